package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/mpegflow/mpegflow"

// pkg is one package as `go list -json` describes it.
type pkg struct {
	ImportPath string
	Standard   bool
	DepOnly    bool
	Imports    []string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// verdict says what a rule makes of a package its roots link.
type verdict int

const (
	follow verdict = iota // allowed; its imports are checked too
	stop                  // allowed with whatever it links (the standard library, a permitted module)
	deny                  // forbidden
)

// importRule is one boundary: what the packages under root may link.
type importRule struct {
	name  string
	root  string // the rule covers root and every package below it
	judge func(p pkg) verdict
}

// under reports whether path is prefix or a package below it.
func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// never allows everything except packages under the forbidden prefixes.
func never(forbidden ...string) func(pkg) verdict {
	return func(p pkg) verdict {
		if under(p.ImportPath, forbidden...) {
			return deny
		}
		return follow
	}
}

// onlyStdlibProtobufGRPC allows the standard library, protobuf and grpc
// (with whatever they link: their business), and other api packages.
func onlyStdlibProtobufGRPC(p pkg) verdict {
	switch {
	case p.Standard:
		return stop
	case under(p.ImportPath, module+"/api"):
		return follow
	case p.Module != nil && slices.Contains([]string{"google.golang.org/protobuf", "google.golang.org/grpc"}, p.Module.Path):
		return stop
	}
	return deny
}

// serverDrivers are the database, queue, migration, storage and Kubernetes
// libraries of the server side: a program that embeds the public SDK
// (client) or a contract (api) must never have to link them.
var serverDrivers = []string{
	"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/golang-migrate",
	"github.com/aws/aws-sdk-go-v2", "k8s.io", "sigs.k8s.io",
}

// importRules are the boundaries of style.md ("Boundaries") and design.md.
var importRules = []importRule{
	{
		name:  "the encoder links no database, Redis, store or coordinator",
		root:  module + "/encoder",
		judge: never("github.com/jackc/pgx", "github.com/redis/go-redis", module+"/internal/store", module+"/dispatcher"),
	},
	{
		name:  "the operator links neither the encoder nor the coordinator",
		root:  module + "/operator",
		judge: never(module+"/encoder", module+"/dispatcher"),
	},
	{
		name:  "contracts link only the standard library, protobuf and grpc",
		root:  module + "/api",
		judge: onlyStdlibProtobufGRPC,
	},
	{
		// The rule above stops at protobuf and grpc; this one follows
		// everything, so no server driver arrives even through them.
		name:  "contracts link no server driver, however indirectly",
		root:  module + "/api",
		judge: never(serverDrivers...),
	},
	{
		name:  "the public Go SDK links no server driver and no server package",
		root:  module + "/client",
		judge: never(append([]string{module + "/internal", module + "/apiserver", module + "/dispatcher", module + "/operator", module + "/encoder"}, serverDrivers...)...),
	},
	{
		// The server-side commands (serve, migrate, admin, encode, dev,
		// operator, pools plan) are wired in cmd/mpegflow and handed to
		// cli.NewRoot; the client verbs only speak REST, through the public
		// client package.
		name: "the CLI links no server, coordinator, operator, encoder, store, server driver or dev tooling",
		root: module + "/cli",
		judge: never(module+"/apiserver", module+"/dispatcher", module+"/operator", module+"/encoder",
			module+"/internal/server", module+"/internal/queue", module+"/internal/store", module+"/dev", module+"/cmd",
			"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/golang-migrate", "github.com/aws/aws-sdk-go-v2", "k8s.io/client-go"),
	},
	{
		// It plays KEDA's part: it starts `mpegflow encode` processes,
		// which reach the coordinator over gRPC as in a cluster.
		name:  "the local executor links neither the coordinator nor the API server",
		root:  module + "/dev/localexec",
		judge: never(module+"/dispatcher", module+"/apiserver", module+"/internal/server", module+"/operator", module+"/encoder"),
	},
	{
		name:  "the batch expander links neither the coordinator nor the API server",
		root:  module + "/backfill",
		judge: never(module+"/dispatcher", module+"/apiserver", module+"/cli", module+"/dev", module+"/cmd"),
	},
	builtOnTop("dispatcher"),
	builtOnTop("apiserver"),
	builtOnTop("internal/server"),
}

// builtOnTop is the rule that the component under dir links neither the
// CLI nor `mpegflow dev`'s tooling nor the binary: those are built on top
// of the components, never under them.
func builtOnTop(dir string) importRule {
	return importRule{
		name:  dir + " links neither the CLI nor dev tooling",
		root:  module + "/" + dir,
		judge: never(module+"/cli", module+"/dev", module+"/cmd"),
	}
}

// violations walks what the rule's roots link and returns, for each
// forbidden package, the import chain that brings it in.
func violations(graph map[string]pkg, r importRule) (roots int, found []string) {
	parent := map[string]string{}
	var queue []string
	for path, p := range graph {
		if !p.DepOnly && under(path, r.root) {
			parent[path] = ""
			queue = append(queue, path)
		}
	}
	slices.Sort(queue)
	roots = len(queue)
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		switch r.judge(graph[path]) {
		case deny:
			chain := []string{path}
			for p := parent[path]; p != ""; p = parent[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			found = append(found, strings.Join(chain, " → "))
			continue
		case stop:
			continue
		}
		for _, imp := range graph[path].Imports {
			if _, seen := parent[imp]; !seen {
				parent[imp] = path
				queue = append(queue, imp)
			}
		}
	}
	return roots, found
}

// loadGraph runs `go list -deps` over the rules' roots, from the module root.
func loadGraph(t *testing.T) map[string]pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the import rules need the go command on PATH")
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Standard,DepOnly,Imports,Module,Error"}
	for _, r := range importRules {
		args = append(args, "./"+strings.TrimPrefix(r.root, module+"/")+"/...")
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	graph := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Nil(t, p.Error, "go list: package %s", p.ImportPath)
		graph[p.ImportPath] = p
	}
	return graph
}

// TestImportRules fails when a component links what its boundary forbids,
// and names the import chain that does it.
func TestImportRules(t *testing.T) {
	t.Parallel()
	graph := loadGraph(t)
	for _, r := range importRules {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			roots, found := violations(graph, r)
			require.NotZero(t, roots, "no package under %s: the rule checks nothing", r.root)
			for _, chain := range found {
				t.Errorf("forbidden: %s", chain)
			}
		})
	}
}

// TestImportRulesFindViolations holds the walk itself to account on a
// small graph: a forbidden package reached through a permitted one is
// found with its chain, one behind a stopping package is not.
func TestImportRulesFindViolations(t *testing.T) {
	t.Parallel()
	mod := func(path string) *struct{ Path string } { return &struct{ Path string }{path} }
	graph := map[string]pkg{
		module + "/api/a":                 {ImportPath: module + "/api/a", Imports: []string{"fmt", module + "/api/b", "google.golang.org/grpc"}},
		module + "/api/b":                 {ImportPath: module + "/api/b", DepOnly: true, Imports: []string{module + "/internal/store"}},
		module + "/internal/store":        {ImportPath: module + "/internal/store", DepOnly: true, Module: mod(module), Imports: []string{"github.com/jackc/pgx/v5"}},
		"github.com/jackc/pgx/v5":         {ImportPath: "github.com/jackc/pgx/v5", DepOnly: true, Module: mod("github.com/jackc/pgx/v5")},
		"google.golang.org/grpc":          {ImportPath: "google.golang.org/grpc", DepOnly: true, Module: mod("google.golang.org/grpc"), Imports: []string{"golang.org/x/net/http2"}},
		"golang.org/x/net/http2":          {ImportPath: "golang.org/x/net/http2", DepOnly: true, Module: mod("golang.org/x/net")},
		"fmt":                             {ImportPath: "fmt", Standard: true, DepOnly: true},
		module + "/encoder":               {ImportPath: module + "/encoder", Imports: []string{module + "/api/a"}},
		module + "/encoder/ffmpeg":        {ImportPath: module + "/encoder/ffmpeg"},
		module + "/dispatcher":            {ImportPath: module + "/dispatcher", DepOnly: true},
		module + "/operator":              {ImportPath: module + "/operator", Imports: []string{module + "/dispatcher"}},
		module + "/operator/internal/sub": {ImportPath: module + "/operator/internal/sub"},
		module + "/client":                {ImportPath: module + "/client", Imports: []string{"net/http", module + "/api/a", "k8s.io/utils/clock"}},
		"net/http":                        {ImportPath: "net/http", Standard: true, DepOnly: true},
		"k8s.io/utils/clock":              {ImportPath: "k8s.io/utils/clock", DepOnly: true, Module: mod("k8s.io/utils")},
		module + "/cli":                   {ImportPath: module + "/cli", Imports: []string{module + "/client"}},
		module + "/cli/config":            {ImportPath: module + "/cli/config", Imports: []string{module + "/dev/localexec"}},
		module + "/dev/localexec":         {ImportPath: module + "/dev/localexec", DepOnly: true, Imports: []string{module + "/dispatcher"}},
	}
	want := map[string][]string{
		"the encoder links no database, Redis, store or coordinator":  {module + "/encoder → " + module + "/api/a → " + module + "/api/b → " + module + "/internal/store"},
		"the operator links neither the encoder nor the coordinator":  {module + "/operator → " + module + "/dispatcher"},
		"contracts link only the standard library, protobuf and grpc": {module + "/api/a → " + module + "/api/b → " + module + "/internal/store"},
		"contracts link no server driver, however indirectly":         {module + "/api/a → " + module + "/api/b → " + module + "/internal/store → github.com/jackc/pgx/v5"},
		"the public Go SDK links no server driver and no server package": {
			module + "/client → k8s.io/utils/clock",
			module + "/client → " + module + "/api/a → " + module + "/api/b → " + module + "/internal/store",
		},
		"the CLI links no server, coordinator, operator, encoder, store, server driver or dev tooling": {
			module + "/cli/config → " + module + "/dev/localexec",
			module + "/cli → " + module + "/client → " + module + "/api/a → " + module + "/api/b → " + module + "/internal/store",
		},
	}
	for _, r := range importRules {
		_, found := violations(graph, r)
		require.Equal(t, want[r.name], found, r.name)
	}
}
