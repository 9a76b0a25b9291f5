// Package migrations embeds MpegFlow's SQL migrations so the one binary can
// migrate its own database (`mpegflow migrate up|down|status`). Files are
// numbered NNNN_name.up.sql / NNNN_name.down.sql and run by golang-migrate.
package migrations

import "embed"

// FS holds every migration file, in golang-migrate's naming scheme.
//
//go:embed *.sql
var FS embed.FS
