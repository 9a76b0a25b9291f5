package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Workflow is a named, reusable encode spec of one organization.
type Workflow struct {
	ID          uuid.UUID       `db:"id"`
	OrgID       uuid.UUID       `db:"org_id"`
	Name        string          `db:"name"`
	Description string          `db:"description"`
	Spec        json.RawMessage `db:"spec"`
	CreatedAt   time.Time       `db:"created_at"`
	UpdatedAt   time.Time       `db:"updated_at"`
}

const workflowColumns = `id, org_id, name, description, spec, created_at, updated_at`

// CreateWorkflow stores a workflow whose spec the caller has validated.
func (s *Store) CreateWorkflow(ctx context.Context, orgID uuid.UUID, name, description string, spec json.RawMessage) (Workflow, error) {
	rows, _ := s.pool.Query(ctx, `INSERT INTO workflows (id, org_id, name, description, spec)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+workflowColumns, newID(), orgID, name, description, spec)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Workflow])
	return w, mapErr(err, "workflow")
}

// GetWorkflow returns one of the organization's workflows.
func (s *Store) GetWorkflow(ctx context.Context, orgID, id uuid.UUID) (Workflow, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+workflowColumns+` FROM workflows WHERE id = $1 AND org_id = $2`, id, orgID)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Workflow])
	return w, mapErr(err, "workflow")
}

// ListWorkflows lists the organization's workflows, newest first.
func (s *Store) ListWorkflows(ctx context.Context, orgID uuid.UUID, page Page) ([]Workflow, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+workflowColumns+` FROM workflows
		WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, orgID, after, afterID, page.limit())
	ws, err := pgx.CollectRows(rows, pgx.RowToStructByName[Workflow])
	return ws, mapErr(err, "workflows")
}

// WorkflowPatch holds the fields an update may change; nil = unchanged.
type WorkflowPatch struct {
	Name        *string
	Description *string
	Spec        json.RawMessage
}

// UpdateWorkflow changes a workflow. Jobs already submitted keep the spec
// they were created with.
func (s *Store) UpdateWorkflow(ctx context.Context, orgID, id uuid.UUID, p WorkflowPatch) (Workflow, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE workflows SET
			name = COALESCE($3, name), description = COALESCE($4, description),
			spec = COALESCE($5, spec), updated_at = now()
		WHERE id = $1 AND org_id = $2 RETURNING `+workflowColumns, id, orgID, p.Name, p.Description, p.Spec)
	w, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Workflow])
	return w, mapErr(err, "workflow")
}

// DeleteWorkflow deletes a workflow; jobs made from it keep their spec.
func (s *Store) DeleteWorkflow(ctx context.Context, orgID, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM workflows WHERE id = $1 AND org_id = $2`, id, orgID)
	if err != nil {
		return mapErr(err, "workflow")
	}
	if tag.RowsAffected() == 0 {
		return mapErr(pgx.ErrNoRows, "workflow")
	}
	return nil
}
