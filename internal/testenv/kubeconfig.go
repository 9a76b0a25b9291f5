package testenv

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes cfg (an envtest apiserver's admin config) as a
// kubeconfig file, so that processes outside the test binary (KEDA's
// operator, kube-controller-manager, a node) reach the same apiserver as the
// same user. Certificates and keys are embedded, not referenced.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	cluster := clientcmdapi.NewCluster()
	cluster.Server = cfg.Host
	if cfg.APIPath != "" && cfg.APIPath != "/api" {
		return fmt.Errorf("write kubeconfig: API path %q is not expressible in a kubeconfig", cfg.APIPath)
	}
	cluster.CertificateAuthority = cfg.CAFile
	cluster.CertificateAuthorityData = cfg.CAData
	cluster.InsecureSkipTLSVerify = cfg.Insecure
	cluster.TLSServerName = cfg.ServerName
	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificate, user.ClientCertificateData = cfg.CertFile, cfg.CertData
	user.ClientKey, user.ClientKeyData = cfg.KeyFile, cfg.KeyData
	user.Token, user.TokenFile = cfg.BearerToken, cfg.BearerTokenFile
	user.Username, user.Password = cfg.Username, cfg.Password
	user.Impersonate = cfg.Impersonate.UserName
	user.ImpersonateGroups = cfg.Impersonate.Groups
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = cluster
	kc.AuthInfos["envtest"] = user
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = "envtest", "envtest"
	kc.Contexts["envtest"] = ctx
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
