// Package objscope is the one place that decides which objects of storage a
// tenant may name.
//
// MpegFlow presigns reads with the deployment's own storage credentials,
// which reach every organization's objects and possibly other buckets.
// Whatever a tenant gives as a storage reference is therefore resolved here
// to a bucket and a key, and admitted only inside the tenant's scope:
// keys under orgs/{org id}/ of the deployment's bucket, plus buckets (or
// prefixes of them) a SuperAdmin granted to that organization. Storage
// references are s3:// URLs (job inputs, batch prefixes, manifest lines)
// and http(s) URLs on the deployment's own storage endpoint: a path-style or
// virtual-hosted URL of a bucket there, or a presigned URL copied from
// somewhere. The API resolves references when it accepts them and stores the
// canonical s3:// form; the coordinator resolves the stored row again at
// claim, so a row edited behind the API is never presigned.
//
// Parsing refuses rather than normalizes: "." and ".." segments, empty
// segments, percent-encoded '/', '\' or '.' (also double-encoded),
// backslashes, control characters, invalid UTF-8, query strings, fragments,
// credentials and keys over S3's 1024 bytes are refused. S3 keys are opaque
// strings; any cleanup done here could differ from what some storage server
// (a filesystem-backed gateway, a proxy) does with the same key.
package objscope
