package operator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mpegflow/mpegflow/internal/store"
)

// PrivilegeSource lists the write privileges of the operator's database
// login; *store.Store on the operator's connection satisfies it.
type PrivilegeSource interface {
	WritePrivileges(ctx context.Context) ([]store.TablePrivilege, error)
}

var _ PrivilegeSource = (*store.Store)(nil)

// WriteLoginError refuses a database login that can write: the operator
// never writes Postgres (design.md, Operator), so a login that could is a
// deployment mistake (the owner's URL pasted into the operator's Secret)
// that widens what a compromised operator pod can do.
type WriteLoginError struct {
	// Privileges are every write privilege found, e.g. "INSERT on public.jobs".
	Privileges []store.TablePrivilege
}

func (e *WriteLoginError) Error() string {
	const shown = 3
	names := make([]string, 0, shown)
	for _, p := range e.Privileges[:min(shown, len(e.Privileges))] {
		names = append(names, p.String())
	}
	more := ""
	if n := len(e.Privileges) - shown; n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("operator: the database login can write (it holds %s%s): give MPEGFLOW_OPERATOR_DATABASE_URL a login "+
		"that only inherits role mpegflow_operator (migrations/0005_operator_role.up.sql), or set "+
		"MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN=true to run anyway", strings.Join(names, ", "), more)
}

// CheckReadOnly returns a *WriteLoginError when the login behind src holds
// any write privilege. With allowWrite the login is accepted and a warning
// names the privileges instead.
func CheckReadOnly(ctx context.Context, src PrivilegeSource, allowWrite bool, log *slog.Logger) error {
	privs, err := src.WritePrivileges(ctx)
	if err != nil {
		return fmt.Errorf("operator: check the database login is read-only: %w", err)
	}
	if len(privs) == 0 {
		return nil
	}
	werr := &WriteLoginError{Privileges: privs}
	if !allowWrite {
		return werr
	}
	log.WarnContext(ctx, "the database login can write but MPEGFLOW_OPERATOR_ALLOW_WRITE_LOGIN=true lets the operator run; "+
		"give it a login in role mpegflow_operator and unset the override", "error", werr.Error(), "write_privileges", len(privs))
	return nil
}
