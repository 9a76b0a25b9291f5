package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// validSettings uses every field, so each case below breaks exactly one.
func validSettings() store.PoolSettings {
	return store.PoolSettings{
		Name:                   "Live GPU",
		Accelerator:            "nvidia",
		MinReplicas:            1,
		MaxReplicas:            8,
		PollingIntervalSeconds: 15,
		TargetQueueLength:      2,
		BackfillMaxReplicas:    4,
		WarmIdleSeconds:        240,
		JobsPerPod:             8,
		CronWindows: []store.CronWindow{
			{Timezone: "Europe/Paris", Start: "55 7 * * 1-5", End: "0 20 * * MON-FRI", DesiredReplicas: 4},
		},
		Resources:    store.Resources{CPURequest: "500m", MemoryRequest: "2Gi", CPULimit: "2", MemoryLimit: "4Gi"},
		NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "g4dn.xlarge"},
		Tolerations:  []store.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}},
		PauseWindows: []store.PauseWindow{{Start: "0 22 * * *", End: "0 6 * * 1-5", Timezone: "Europe/Paris"}},
	}
}

func TestPoolSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mutate func(*store.PoolSettings)
		fields []string // sorted; empty = valid
	}{
		"valid":                {mutate: func(*store.PoolSettings) {}},
		"defaults with a name": {mutate: func(p *store.PoolSettings) { *p = poolSettings("x") }},
		"max_replicas 0": {mutate: func(p *store.PoolSettings) {
			p.MaxReplicas, p.MinReplicas, p.BackfillMaxReplicas, p.CronWindows = 0, 0, 0, nil
		}, fields: []string{"max_replicas"}},
		"max_replicas 1001":            {mutate: func(p *store.PoolSettings) { p.MaxReplicas = 1001 }, fields: []string{"max_replicas"}},
		"min equals max":               {mutate: func(p *store.PoolSettings) { p.MinReplicas = 8 }, fields: []string{"min_replicas"}},
		"min above max":                {mutate: func(p *store.PoolSettings) { p.MinReplicas = 9 }, fields: []string{"min_replicas"}},
		"min negative":                 {mutate: func(p *store.PoolSettings) { p.MinReplicas = -1 }, fields: []string{"min_replicas"}},
		"empty name":                   {mutate: func(p *store.PoolSettings) { p.Name = "  " }, fields: []string{"name"}},
		"unknown accelerator":          {mutate: func(p *store.PoolSettings) { p.Accelerator = "tpu" }, fields: []string{"accelerator"}},
		"polling 0":                    {mutate: func(p *store.PoolSettings) { p.PollingIntervalSeconds = 0 }, fields: []string{"polling_interval_seconds"}},
		"target queue 0":               {mutate: func(p *store.PoolSettings) { p.TargetQueueLength = 0 }, fields: []string{"target_queue_length"}},
		"backfill above max":           {mutate: func(p *store.PoolSettings) { p.BackfillMaxReplicas = 9 }, fields: []string{"backfill_max_replicas"}},
		"backfill negative":            {mutate: func(p *store.PoolSettings) { p.BackfillMaxReplicas = -1 }, fields: []string{"backfill_max_replicas"}},
		"cron start four fields":       {mutate: func(p *store.PoolSettings) { p.CronWindows[0].Start = "55 7 * *" }, fields: []string{"cron_windows[0].start"}},
		"cron end bad characters":      {mutate: func(p *store.PoolSettings) { p.CronWindows[0].End = "0 20 * * $" }, fields: []string{"cron_windows[0].end"}},
		"cron start equals end":        {mutate: func(p *store.PoolSettings) { p.CronWindows[0].End = p.CronWindows[0].Start }, fields: []string{"cron_windows[0].end"}},
		"cron start equals end spaced": {mutate: func(p *store.PoolSettings) { p.CronWindows[0].End = " 55  7 * * 1-5" }, fields: []string{"cron_windows[0].end"}},
		"cron start and end both bad":  {mutate: func(p *store.PoolSettings) { p.CronWindows[0].Start, p.CronWindows[0].End = "x", "x" }, fields: []string{"cron_windows[0].end", "cron_windows[0].start"}},
		"warm idle below 20 s":         {mutate: func(p *store.PoolSettings) { p.WarmIdleSeconds = 19 }, fields: []string{"warm_idle_seconds"}},
		"warm idle above an hour":      {mutate: func(p *store.PoolSettings) { p.WarmIdleSeconds = 3601 }, fields: []string{"warm_idle_seconds"}},
		"jobs per pod 0":               {mutate: func(p *store.PoolSettings) { p.JobsPerPod = 0 }, fields: []string{"jobs_per_pod"}},
		"jobs per pod 100":             {mutate: func(p *store.PoolSettings) { p.JobsPerPod = 100 }},
		"jobs per pod 101":             {mutate: func(p *store.PoolSettings) { p.JobsPerPod = 101 }, fields: []string{"jobs_per_pod"}},
		"cron timezone unknown":        {mutate: func(p *store.PoolSettings) { p.CronWindows[0].Timezone = "Mars/Olympus" }, fields: []string{"cron_windows[0].timezone"}},
		"cron timezone empty":          {mutate: func(p *store.PoolSettings) { p.CronWindows[0].Timezone = "" }, fields: []string{"cron_windows[0].timezone"}},
		"cron desired above max":       {mutate: func(p *store.PoolSettings) { p.CronWindows[0].DesiredReplicas = 9 }, fields: []string{"cron_windows[0].desired_replicas"}},
		"cron desired 0":               {mutate: func(p *store.PoolSettings) { p.CronWindows[0].DesiredReplicas = 0 }, fields: []string{"cron_windows[0].desired_replicas"}},
		"too many cron windows":        {mutate: func(p *store.PoolSettings) { p.CronWindows = slices.Repeat(p.CronWindows, 21) }, fields: []string{"cron_windows"}},
		"cpu request bad quantity":     {mutate: func(p *store.PoolSettings) { p.Resources.CPURequest = "half" }, fields: []string{"resources.cpu_request"}},
		"memory limit bad quantity":    {mutate: func(p *store.PoolSettings) { p.Resources.MemoryLimit = "4GB" }, fields: []string{"resources.memory_limit"}},
		"node selector bad key":        {mutate: func(p *store.PoolSettings) { p.NodeSelector = map[string]string{"-bad": "x"} }, fields: []string{"node_selector.-bad"}},
		"node selector bad value":      {mutate: func(p *store.PoolSettings) { p.NodeSelector = map[string]string{"zone": "a b"} }, fields: []string{"node_selector.zone"}},
		"toleration effect unknown":    {mutate: func(p *store.PoolSettings) { p.Tolerations[0].Effect = "NoWay" }, fields: []string{"tolerations[0].effect"}},
		"toleration operator unknown":  {mutate: func(p *store.PoolSettings) { p.Tolerations[0].Operator = "In" }, fields: []string{"tolerations[0].operator"}},
		"toleration key invalid":       {mutate: func(p *store.PoolSettings) { p.Tolerations[0].Key = "bad key" }, fields: []string{"tolerations[0].key"}},
		// Kubernetes validates a toleration's value as a label value, empty
		// when the operator is Exists, and a toleration without a key must
		// be Exists: anything else the operator could never apply.
		"toleration equal with a value": {mutate: func(p *store.PoolSettings) {
			p.Tolerations[0] = store.Toleration{Key: "gpu", Operator: "Equal", Value: "true", Effect: "NoSchedule"}
		}},
		"toleration value not a label value": {mutate: func(p *store.PoolSettings) {
			p.Tolerations[0] = store.Toleration{Key: "gpu", Operator: "Equal", Value: "a b", Effect: "NoSchedule"}
		}, fields: []string{"tolerations[0].value"}},
		"toleration value with a bidi override": {mutate: func(p *store.PoolSettings) {
			p.Tolerations[0] = store.Toleration{Key: "gpu", Value: "true\u202e", Effect: "NoSchedule"}
		}, fields: []string{"tolerations[0].value"}},
		"toleration value too long": {mutate: func(p *store.PoolSettings) {
			p.Tolerations[0] = store.Toleration{Key: "gpu", Operator: "Equal", Value: strings.Repeat("a", 64), Effect: "NoSchedule"}
		}, fields: []string{"tolerations[0].value"}},
		"toleration value with Exists": {mutate: func(p *store.PoolSettings) { p.Tolerations[0].Value = "true" }, fields: []string{"tolerations[0].value"}},
		"toleration without key not Exists": {mutate: func(p *store.PoolSettings) {
			p.Tolerations[0] = store.Toleration{Operator: "Equal", Value: "true", Effect: "NoSchedule"}
		}, fields: []string{"tolerations[0].operator"}},
		"second window bad": {mutate: func(p *store.PoolSettings) {
			p.CronWindows = append(p.CronWindows, store.CronWindow{Timezone: "UTC", Start: "x", End: "0 1 * * *", DesiredReplicas: 1})
		}, fields: []string{"cron_windows[1].start"}},
		"pause window cron out of range": {mutate: func(p *store.PoolSettings) { p.PauseWindows[0].Start = "0 25 * * *" }, fields: []string{"pause_windows[0].start"}},
		"pause window five bad fields":   {mutate: func(p *store.PoolSettings) { p.PauseWindows[0].End = "a b c d e" }, fields: []string{"pause_windows[0].end"}},
		"pause window seconds field":     {mutate: func(p *store.PoolSettings) { p.PauseWindows[0].End = "0 0 6 * * *" }, fields: []string{"pause_windows[0].end"}},
		"pause window timezone":          {mutate: func(p *store.PoolSettings) { p.PauseWindows[0].Timezone = "Europe/Atlantis" }, fields: []string{"pause_windows[0].timezone"}},
		"pause window start is end":      {mutate: func(p *store.PoolSettings) { p.PauseWindows[0].End = p.PauseWindows[0].Start }, fields: []string{"pause_windows[0].end"}},
		"too many pause windows":         {mutate: func(p *store.PoolSettings) { p.PauseWindows = slices.Repeat(p.PauseWindows, 21) }, fields: []string{"pause_windows"}},
		"twenty pause windows":           {mutate: func(p *store.PoolSettings) { p.PauseWindows = slices.Repeat(p.PauseWindows, 20) }},
		"several at once, all reported": {
			mutate: func(p *store.PoolSettings) {
				p.MaxReplicas, p.MinReplicas = 0, 0
				p.Resources.CPURequest = "lots"
				p.Tolerations[0].Effect = "Sometimes"
			},
			// desired_replicas (4) and backfill (4) now exceed max_replicas (0) too.
			fields: []string{"backfill_max_replicas", "cron_windows[0].desired_replicas", "max_replicas", "resources.cpu_request", "tolerations[0].effect"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := validSettings()
			tc.mutate(&p)
			err := p.Validate()
			if len(tc.fields) == 0 {
				require.NoError(t, err)
				return
			}
			got := fieldsOf(t, err)
			slices.Sort(got)
			assert.Equal(t, tc.fields, got)
		})
	}
}

func TestCreatePoolRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	set := validSettings()
	p, err := s.CreatePool(ctx, b.Org.ID, set)
	require.NoError(t, err)
	assert.Regexp(t, `^p[a-z2-7]{8}$`, p.ID)
	require.NotNil(t, p.OrgID)
	assert.Equal(t, b.Org.ID, *p.OrgID)
	assert.False(t, p.Shared())
	assert.Equal(t, "active", p.Status)
	if diff := cmp.Diff(set, p.PoolSettings); diff != "" {
		t.Errorf("created settings (-want +got):\n%s", diff)
	}
	got, err := s.GetPool(ctx, store.PoolScope{OrgID: b.Org.ID}, p.ID)
	require.NoError(t, err)
	if diff := cmp.Diff(set, got.PoolSettings); diff != "" {
		t.Errorf("read settings (-want +got):\n%s", diff)
	}
}

func TestPoolScope(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	b := bootstrap(t, s, "Other")
	poolA := createPool(t, s, a.Org.ID, "acme")
	poolB := createPool(t, s, b.Org.ID, "other")

	ownA := store.PoolScope{OrgID: a.Org.ID}
	ownB := store.PoolScope{OrgID: b.Org.ID}
	sharedB := store.PoolScope{OrgID: b.Org.ID, Shared: true}

	rename := func(name string) func(*store.PoolSettings) error {
		return func(p *store.PoolSettings) error { p.Name = name; return nil }
	}

	t.Run("other org's pool is not found", func(t *testing.T) {
		t.Parallel()
		for _, sc := range []store.PoolScope{ownB, sharedB} {
			_, err := s.GetPool(ctx, sc, poolA.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
			called := false
			_, err = s.UpdatePool(ctx, sc, poolA.ID, func(p *store.PoolSettings) error { called = true; return nil })
			require.ErrorIs(t, err, store.ErrNotFound)
			assert.False(t, called, "edit never sees another org's settings")
			_, err = s.SetPoolStatus(ctx, sc, poolA.ID, "paused")
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		require.ErrorIs(t, s.DeletePool(ctx, b.Org.ID, poolA.ID), store.ErrNotFound)

		got, err := s.GetPool(ctx, ownA, poolA.ID)
		require.NoError(t, err)
		assert.Equal(t, "acme", got.Name)
		assert.Equal(t, "active", got.Status)
	})

	t.Run("shared pool needs Shared to read", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetPool(ctx, ownB, store.DefaultPoolID)
		require.ErrorIs(t, err, store.ErrNotFound)
		p, err := s.GetPool(ctx, sharedB, store.DefaultPoolID)
		require.NoError(t, err)
		assert.True(t, p.Shared())
	})

	t.Run("shared pool writes need Shared", func(t *testing.T) {
		t.Parallel()
		_, err := s.UpdatePool(ctx, ownB, store.DefaultPoolID, rename("mine now"))
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.SetPoolStatus(ctx, ownB, store.DefaultPoolID, "paused")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, s.DeletePool(ctx, b.Org.ID, store.DefaultPoolID), store.ErrNotFound)

		p, err := s.GetPool(ctx, sharedB, store.DefaultPoolID)
		require.NoError(t, err)
		assert.Equal(t, "Shared pool", p.Name)
		assert.Equal(t, "active", p.Status)
	})

	t.Run("own pool writable", func(t *testing.T) {
		t.Parallel()
		p, err := s.UpdatePool(ctx, ownB, poolB.ID, rename("renamed"))
		require.NoError(t, err)
		assert.Equal(t, "renamed", p.Name)
		p, err = s.SetPoolStatus(ctx, ownB, poolB.ID, "paused")
		require.NoError(t, err)
		assert.Equal(t, "paused", p.Status)
	})

	t.Run("lists", func(t *testing.T) {
		t.Parallel()
		ids := func(sc store.PoolScope) []string {
			ps, err := s.ListPools(ctx, sc)
			require.NoError(t, err)
			var out []string
			for _, p := range ps {
				out = append(out, p.ID)
			}
			return out
		}
		assert.Equal(t, []string{poolA.ID}, ids(ownA))
		assert.Equal(t, []string{store.DefaultPoolID, poolB.ID}, ids(sharedB), "the shared pool first")
	})
}

func TestUpdatePoolSharedWithShared(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	sc := store.PoolScope{OrgID: b.Org.ID, Shared: true}

	p, err := s.UpdatePool(ctx, sc, store.DefaultPoolID, func(p *store.PoolSettings) error {
		p.MaxReplicas = 60
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 60, p.MaxReplicas)
	assert.Nil(t, p.OrgID, "updating the shared pool keeps it shared")

	p, err = s.SetPoolStatus(ctx, sc, store.DefaultPoolID, "paused")
	require.NoError(t, err)
	assert.Equal(t, "paused", p.Status)
}

// TestSharedPoolRunsOneJobPerPod: the shared pool's pods serve every
// organization, so it never runs more than one job per pod: an edit that
// says otherwise is a field error and changes nothing, and Postgres refuses
// the value on a write that skips the store. A dedicated pool may.
func TestSharedPoolRunsOneJobPerPod(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	sc := store.PoolScope{OrgID: b.Org.ID, Shared: true}

	_, err := s.UpdatePool(ctx, sc, store.DefaultPoolID, func(p *store.PoolSettings) error {
		p.Name = "renamed"
		p.JobsPerPod = 2
		return p.Validate()
	})
	assert.Equal(t, []string{"jobs_per_pod"}, fieldsOf(t, err))
	got, err := s.GetPool(ctx, sc, store.DefaultPoolID)
	require.NoError(t, err)
	assert.Equal(t, 1, got.JobsPerPod)
	assert.Equal(t, "Shared pool", got.Name, "the refused edit changed nothing")

	_, err = db.Exec(ctx, `UPDATE worker_pools SET jobs_per_pod = 2 WHERE id = $1`, store.DefaultPoolID)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "Postgres refuses more than one job per pod on the shared pool")
	assert.Equal(t, "worker_pools_shared_one_job_per_pod", pgErr.ConstraintName)

	pool := createPool(t, s, b.Org.ID, "chunks")
	p, err := s.UpdatePool(ctx, sc, pool.ID, func(p *store.PoolSettings) error { p.JobsPerPod = 8; return p.Validate() })
	require.NoError(t, err)
	assert.Equal(t, 8, p.JobsPerPod)
	got, err = s.GetPool(ctx, sc, pool.ID)
	require.NoError(t, err)
	assert.Equal(t, 8, got.JobsPerPod)
}

func TestUpdatePoolEditErrorChangesNothing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "before")
	sc := store.PoolScope{OrgID: b.Org.ID}

	_, err := s.UpdatePool(ctx, sc, pool.ID, func(p *store.PoolSettings) error {
		p.Name = "after"
		p.MaxReplicas = 0
		return p.Validate()
	})
	assert.Equal(t, []string{"max_replicas"}, fieldsOf(t, err))
	got, err := s.GetPool(ctx, sc, pool.ID)
	require.NoError(t, err)
	assert.Equal(t, "before", got.Name)
	assert.Equal(t, pool.MaxReplicas, got.MaxReplicas)
}

func TestDeletePool(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "p")
	sc := store.PoolScope{OrgID: b.Org.ID}

	nj := urlJob(b.Org.ID)
	nj.PoolID = pool.ID
	j := createJob(t, s, nj)

	err := s.DeletePool(ctx, b.Org.ID, pool.ID)
	require.ErrorIs(t, err, store.ErrConflict, "a queued job keeps the pool")
	_, err = s.GetPool(ctx, sc, pool.ID)
	require.NoError(t, err)

	_, err = s.CancelJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)

	require.NoError(t, s.DeletePool(ctx, b.Org.ID, pool.ID))
	_, err = s.GetPool(ctx, sc, pool.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err, "finished jobs outlive their pool")
	assert.Equal(t, pool.ID, got.PoolID)

	require.ErrorIs(t, s.DeletePool(ctx, b.Org.ID, pool.ID), store.ErrNotFound)
}

func TestDeletePoolBlockedByEveryUnfinishedStatus(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	tests := map[string]struct {
		status  string
		blocked bool
	}{
		"queued":     {store.JobQueued, true},
		"running":    {store.JobRunning, true},
		"retry_wait": {store.JobRetryWait, true},
		"completed":  {store.JobCompleted, false},
		"failed":     {store.JobFailed, false},
		"cancelled":  {store.JobCancelled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool := createPool(t, s, b.Org.ID, name)
			nj := urlJob(b.Org.ID)
			nj.PoolID = pool.ID
			j := createJob(t, s, nj)
			_, err := db.Exec(ctx, `UPDATE jobs SET status = $2 WHERE id = $1`, j.ID, tc.status)
			require.NoError(t, err)

			err = s.DeletePool(ctx, b.Org.ID, pool.ID)
			if tc.blocked {
				require.ErrorIs(t, err, store.ErrConflict)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestCreateJobOnDedicatedPoolOfOwnOrg(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "p")

	nj := urlJob(b.Org.ID)
	nj.PoolID = pool.ID
	nj.Lane = apiv1.LaneBackfill
	j := createJob(t, s, nj)
	assert.Equal(t, pool.ID, j.PoolID)
	assert.Equal(t, apiv1.LaneBackfill, j.Lane)
}
