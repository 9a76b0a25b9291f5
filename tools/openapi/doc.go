// Package openapi pins the OpenAPI client generator (oapi-codegen, a tool of
// this module) and the runtime its generated clients import. The apiserver
// test TestOpenAPIClientCompiles generates a Go client from the served
// document with them and builds it, so the document stays usable by a
// mainstream generator. Nothing generated is committed.
package openapi

import (
	// Imported so go mod tidy keeps the runtime the generated client needs.
	_ "github.com/oapi-codegen/runtime"
	_ "github.com/oapi-codegen/runtime/types"
)
