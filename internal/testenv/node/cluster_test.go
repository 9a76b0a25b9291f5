//go:build cluster

package node_test

import (
	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// Variables `make test-cluster` sets for TestCluster's probe image.
const (
	netcheckArchEnv = "MPEGFLOW_NODE_NETCHECK_ARCHIVE"
	netcheckImgEnv  = "MPEGFLOW_NODE_NETCHECK_IMAGE"
	netcheckBinEnv  = "MPEGFLOW_NODE_NETCHECK" // the same program, run on the host
)

var (
	podSubnet   = cluster.PodSubnet
	serviceCIDR = cluster.ServiceCIDR
)

const (
	clusterDomain = cluster.Domain
	podTimeout    = cluster.PodTimeout
)

// rig is TestCluster's cluster and what its scenarios share.
type rig struct {
	*cluster.Cluster
	// image is the netcheck image, imported.
	image string
	// netcheckAsNobody probes ip:port from the host as uid 65534.
	netcheckAsNobody func(ip string, port int) bool
	// imported are the project's images once imported (importBuiltImages).
	imported map[string]string
}
