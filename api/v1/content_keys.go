package apiv1

// ClearKeyRequest is the license request a W3C ClearKey content decryption
// module sends (Encrypted Media Extensions, section 9.1.3): the key IDs it
// needs, in unpadded base64url.
type ClearKeyRequest struct {
	KIDs []string `json:"kids"`
	// Type is "temporary", the only session type served (default).
	Type string `json:"type,omitempty"`
}

// ClearKeyLicense answers a ClearKeyRequest: the asked-for keys the job
// has, as JSON Web Keys.
type ClearKeyLicense struct {
	Keys []ClearKeyJWK `json:"keys"`
	Type string        `json:"type"`
}

// ClearKeyJWK is one symmetric key of a ClearKey license: Kid and K are
// unpadded base64url.
type ClearKeyJWK struct {
	Kty string `json:"kty"` // "oct"
	Kid string `json:"kid"`
	K   string `json:"k"`
}

// Content key limits and values.
const (
	ClearKeyTemporary  = "temporary"
	MaxClearKeyRequest = 16 // key IDs one license request may ask for
)
