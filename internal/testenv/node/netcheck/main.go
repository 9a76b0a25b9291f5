// Command netcheck is the cluster tier's network probe, packed into an OCI
// image like the pause image (`make netcheck-image`): static, no libc, no
// shell. It has two modes.
//
//	netcheck serve -addr :8080 [-health :8081]
//
// answers every HTTP request with the pod's name ($POD_NAME, else the host
// name), so that a client can tell which replica behind a Service answered;
// on -health too, when given: a probe port that a NetworkPolicy can open to
// the node alone. It exits 0 on SIGTERM.
//
//	netcheck get -host web.ns.svc.cluster.local -port 80 -want 2 -timeout 60s
//
// resolves the host name through the pod's resolv.conf (the cluster DNS),
// then makes new connections to it until it has seen -want distinct answers
// or -timeout passes, retrying failures (DNS or the Service's rules may not
// be programmed yet). It writes one JSON report both to standard output and
// to /dev/termination-log, where the kubelet puts it in the pod's status
// for the test to read: {"addresses":[...],"answers":{"pod":count},"errors":n}.
// It exits 0 when it saw -want distinct answers, 1 otherwise. With -tcp it
// only connects (any port, any protocol: a gRPC or REST listener) and
// counts each connection as the answer "tcp ADDRESS". With -refused it
// checks the opposite: it keeps trying until -timeout and exits 0 only if
// some attempt failed and none connected after the first failure. A
// connection before that is counted as "early" and allowed: a
// NetworkPolicy controller that learns pod IPs from the apiserver judges a
// new pod's first packets as no pod's.
//
//	netcheck api -url https://kubernetes.default.svc/api/v1/namespaces/NS/configmaps -timeout 60s
//
// GETs a list from the apiserver as the pod's service account: its
// projected token as the bearer, the server verified against the
// kube-root-ca.crt in the same directory
// (/var/run/secrets/kubernetes.io/serviceaccount), retrying until an answer
// 200 or -timeout. It reports {"status":200,"items":["name",...]} (or the
// last error) like get, and exits 0 on 200.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netcheck serve|get|api [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	case "api":
		err = api(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: serve, get or api", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netcheck:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":8080", "listen address")
	health := fs.String("health", "", "a second listen address, for probes")
	_ = fs.Parse(args)
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	})
	// As PID 1 of its container it gets no default action for SIGTERM:
	// without a handler the kubelet would wait out the grace period.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	errs := make(chan error, 2)
	go func() { <-stop; errs <- nil }()
	for _, a := range []string{*addr, *health} {
		if a == "" {
			continue
		}
		srv := &http.Server{Addr: a, ReadHeaderTimeout: 5 * time.Second, Handler: handler}
		fmt.Println("netcheck: serving as", name, "on", a)
		go func() { errs <- srv.ListenAndServe() }()
	}
	return <-errs
}

type report struct {
	Addresses []string       `json:"addresses"`
	Answers   map[string]int `json:"answers"`
	Errors    int            `json:"errors"`
	LastError string         `json:"lastError,omitempty"`
	// With -refused: connections before the first failure, and after it.
	Early int `json:"early,omitempty"`
	Leaks int `json:"leaks,omitempty"`
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	host := fs.String("host", "", "name to resolve and connect to")
	port := fs.Int("port", 80, "port")
	want := fs.Int("want", 1, "distinct answers to see")
	timeout := fs.Duration("timeout", time.Minute, "give up after")
	tcpOnly := fs.Bool("tcp", false, "connect only; no HTTP request")
	refused := fs.Bool("refused", false, "expect no connection (after the first failure) until -timeout")
	_ = fs.Parse(args)
	if *host == "" {
		return errors.New("-host is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := report{Answers: map[string]int{}}
	var resolver net.Resolver // pure Go: /etc/resolv.conf, its search list and ndots
	if *refused {
		return expectRefused(ctx, &resolver, *host, *port, *tcpOnly, &r)
	}
	for len(r.Answers) < *want && ctx.Err() == nil {
		if err := once(ctx, &resolver, *host, *port, *tcpOnly, &r); err != nil {
			r.Errors++
			r.LastError = err.Error()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	writeReport(r)
	if len(r.Answers) < *want {
		return fmt.Errorf("saw %d distinct answers within %s, want %d", len(r.Answers), *timeout, *want)
	}
	return nil
}

// writeReport prints the report and leaves it where the kubelet reads a
// container's termination message.
func writeReport(r report) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	_ = os.WriteFile("/dev/termination-log", b, 0o644)
}

// expectRefused tries host:port until ctx ends and fails on a connection
// after the first failed attempt.
func expectRefused(ctx context.Context, resolver *net.Resolver, host string, port int, tcpOnly bool, r *report) error {
	for ctx.Err() == nil {
		err := once(ctx, resolver, host, port, tcpOnly, r)
		switch {
		case err != nil:
			r.Errors++
			r.LastError = err.Error()
		case r.Errors == 0:
			r.Early++
		default:
			r.Leaks++
		}
		clear(r.Answers) // counted above
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	writeReport(*r)
	if r.Errors == 0 || r.Leaks > 0 {
		return fmt.Errorf("%d failed attempts, %d connections after the first failure, want some and none", r.Errors, r.Leaks)
	}
	return nil
}

// once resolves host and makes one request on a new connection (or, with
// tcpOnly, only the connection).
func once(ctx context.Context, resolver *net.Resolver, host string, port int, tcpOnly bool, r *report) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := resolver.LookupHost(ctx, host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	r.Addresses = addrs
	if tcpOnly {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addrs[0], strconv.Itoa(port)))
		if err != nil {
			return err
		}
		r.Answers["tcp "+conn.RemoteAddr().String()]++
		return conn.Close()
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + net.JoinHostPort(addrs[0], strconv.Itoa(port)) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	r.Answers[string(body)]++
	return nil
}

// serviceAccountDir is where the kubelet mounts a pod's service account
// token and the cluster's CA.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type apiReport struct {
	Status    int      `json:"status"`
	Items     []string `json:"items"`
	Errors    int      `json:"errors"`
	LastError string   `json:"lastError,omitempty"`
}

func api(args []string) error {
	fs := flag.NewFlagSet("api", flag.ExitOnError)
	url := fs.String("url", "", "the list to GET, https://kubernetes.default.svc/...")
	timeout := fs.Duration("timeout", time.Minute, "give up after")
	_ = fs.Parse(args)
	if *url == "" {
		return errors.New("-url is required")
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("no certificate in the service account's ca.crt")
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var r apiReport
	for ctx.Err() == nil {
		err := apiOnce(ctx, client, *url, &r)
		if err == nil {
			break
		}
		r.Errors++
		r.LastError = err.Error()
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	_ = os.WriteFile("/dev/termination-log", b, 0o644)
	if r.Status != http.StatusOK {
		return fmt.Errorf("no 200 from %s within %s: %s", *url, *timeout, r.LastError)
	}
	return nil
}

// apiOnce makes one request with the token as it is now (the kubelet
// rotates it in place).
func apiOnce(ctx context.Context, client *http.Client, url string, r *apiReport) error {
	token, err := os.ReadFile(filepath.Join(serviceAccountDir, "token"))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %.200s", url, resp.Status, body)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("%s: not a list: %w", url, err)
	}
	r.Items = r.Items[:0]
	for _, it := range list.Items {
		r.Items = append(r.Items, it.Metadata.Name)
	}
	return nil
}
