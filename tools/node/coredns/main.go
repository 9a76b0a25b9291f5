// Command coredns is CoreDNS built with only the plugins the cluster tier's
// Corefile names (node.Corefile in internal/testenv/node; its test checks
// that each is imported here). CoreDNS's own command compiles every plugin
// it ships, the cloud providers' DNS plugins and their SDKs among them: about
// seven minutes of a cold CI run on two cores, for a server that answers
// cluster names.
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
