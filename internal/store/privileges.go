package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TablePrivilege is one write privilege the connected login holds on one
// table: what a read-only login (the operator's) must have none of.
type TablePrivilege struct {
	Schema    string `db:"schema"`
	Table     string `db:"table"`
	Privilege string `db:"privilege"` // INSERT, UPDATE, DELETE or TRUNCATE
}

func (p TablePrivilege) String() string {
	return p.Privilege + " on " + p.Schema + "." + p.Table
}

// WritePrivileges lists every INSERT, UPDATE, DELETE and TRUNCATE privilege
// the connected login holds, directly, through a role it inherits or as a
// superuser, on the tables of the database (system catalogs aside), in
// schema, table and privilege order. has_table_privilege answers for
// current_user, so SET ROLE tricks are not seen; a login that only inherits
// mpegflow_operator gets an empty list.
func (s *Store) WritePrivileges(ctx context.Context) ([]TablePrivilege, error) {
	rows, _ := s.pool.Query(ctx, `
SELECT n.nspname AS schema, c.relname AS table, p.privilege
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND has_table_privilege(c.oid, p.privilege)
ORDER BY 1, 2, array_position(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], p.privilege)`)
	privs, err := pgx.CollectRows(rows, pgx.RowToStructByName[TablePrivilege])
	if err != nil {
		return nil, fmt.Errorf("list write privileges: %w", err)
	}
	return privs, nil
}
