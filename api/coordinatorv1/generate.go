// Package coordinatorv1 holds the generated gRPC code of the worker-facing
// coordinator protocol (mpegflow.coordinator.v1). Edit coordinator.proto and
// run `make generate`; never edit the *.pb.go files.
package coordinatorv1

//go:generate sh -c "protoc --plugin=protoc-gen-go=$TOOLS_BIN/protoc-gen-go --plugin=protoc-gen-go-grpc=$TOOLS_BIN/protoc-gen-go-grpc --go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. coordinator.proto"
