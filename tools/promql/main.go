// Command promql checks PromQL expressions with Prometheus's own parser
// (pinned in this module's go.mod). It reads one expression a line on its
// standard input and writes, a line each, a JSON object with the metric
// names the expression selects, or the parser's error; it exits 1 if any
// expression does not parse. The chart's tests run it on every expression
// of the Grafana dashboard and of the PrometheusRule, so a typo there fails
// `make test` instead of a panel or an alert.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/prometheus/promql/parser"
)

// result is what one expression gave.
type result struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func main() {
	p := parser.NewParser(parser.Options{})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 64*1024), 1<<20)
	out := json.NewEncoder(os.Stdout)
	bad := 0
	for in.Scan() {
		r := check(p, in.Text())
		if r.Error != "" {
			bad++
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "read the expressions:", err)
		os.Exit(2)
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// check parses expr and lists the metric names its selectors name.
func check(p parser.Parser, expr string) result {
	r := result{Expr: expr}
	e, err := p.ParseExpr(expr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(r.Metrics, vs.Name) {
			r.Metrics = append(r.Metrics, vs.Name)
		}
		return nil
	})
	return r
}
