package apiserver

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

func checkWorkflowName(errs *validation.Errors, name string) {
	if l := len(strings.TrimSpace(name)); l == 0 || l > 100 {
		errs.Add("name", "must be 1 to 100 characters")
	}
}

// parseSpec validates an encode spec and returns its normalized JSON.
func parseSpec(errs *validation.Errors, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		errs.Add("spec", "is required")
		return nil
	}
	spec, err := encodespec.Parse(raw)
	if ve, ok := validation.As(err); ok {
		*errs = append(*errs, ve.Prefixed("spec")...)
		return nil
	} else if err != nil {
		errs.Add("spec", "%s", err.Error())
		return nil
	}
	return mustJSON(spec)
}

func (s *Server) createWorkflow(c *fiber.Ctx) error {
	var req apiv1.WorkflowRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	checkWorkflowName(&errs, req.Name)
	if len(req.Description) > 1000 {
		errs.Add("description", "must be at most 1000 characters")
	}
	spec := parseSpec(&errs, req.Spec)
	if len(errs) > 0 {
		return invalid(errs)
	}
	w, err := s.store.CreateWorkflow(c.UserContext(), principal(c).OrgID, strings.TrimSpace(req.Name), req.Description, spec)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(workflowOut(w))
}

func (s *Server) listWorkflows(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ws, err := s.store.ListWorkflows(c.UserContext(), principal(c).OrgID, page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(ws, page, func(w store.Workflow) (time.Time, uuid.UUID) { return w.CreatedAt, w.ID }, workflowOut))
}

func (s *Server) getWorkflow(c *fiber.Ctx) error {
	id, err := pathID(c, "workflow")
	if err != nil {
		return err
	}
	w, err := s.store.GetWorkflow(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "workflow")
	}
	return c.JSON(workflowOut(w))
}

func (s *Server) updateWorkflow(c *fiber.Ctx) error {
	id, err := pathID(c, "workflow")
	if err != nil {
		return err
	}
	var req apiv1.WorkflowPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs validation.Errors
	patch := store.WorkflowPatch{Description: req.Description}
	if req.Name != nil {
		checkWorkflowName(&errs, *req.Name)
		n := strings.TrimSpace(*req.Name)
		patch.Name = &n
	}
	if req.Description != nil && len(*req.Description) > 1000 {
		errs.Add("description", "must be at most 1000 characters")
	}
	if len(req.Spec) > 0 {
		patch.Spec = parseSpec(&errs, req.Spec)
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	w, err := s.store.UpdateWorkflow(c.UserContext(), principal(c).OrgID, id, patch)
	if err != nil {
		return notFoundOr(err, "workflow")
	}
	return c.JSON(workflowOut(w))
}

func (s *Server) deleteWorkflow(c *fiber.Ctx) error {
	id, err := pathID(c, "workflow")
	if err != nil {
		return err
	}
	if err := s.store.DeleteWorkflow(c.UserContext(), principal(c).OrgID, id); err != nil {
		return notFoundOr(err, "workflow")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
