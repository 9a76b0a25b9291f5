//go:build cluster

package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// apiserverCerts writes into dir (envtest's --cert-dir) what envtest would
// write, with a serving certificate pods can verify: apiserver.crt and
// apiserver.key for localhost, 127.0.0.1, the kubernetes Service's names
// and ClusterIP and the bridge address the apiserver listens on, signed by
// a CA made for this call; and sa-signer.key/.crt, the service account
// token signing key. It returns the CA's certificate (PEM), which is
// envtest's SecureServing.CA, the clients' CA and every pod's
// kube-root-ca.crt.
//
// envtest writes these files only when apiserver.crt is absent, and its own
// certificate names localhost and the listen address alone.
func apiserverCerts(dir string, serviceIP, listen netip.Addr, domain string) ([]byte, error) {
	ca, err := testenv.NewCA("mpegflow cluster tier CA")
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IP(serviceIP.AsSlice()), net.IP(listen.AsSlice())})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for name, b := range map[string][]byte{
		"apiserver.crt": cert,
		"apiserver.key": key,
		"sa-signer.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		"sa-signer.crt": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	return ca.PEM, nil
}
