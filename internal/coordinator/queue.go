package coordinator

import "github.com/aitbc/aitbc/internal/coordinator/store"

// jobQueue holds the ids of jobs waiting for a miner, first in first out
// per model, so that a model nobody can serve right now costs one check
// per dispatch pass, not one per waiting job.
type jobQueue struct {
	byModel map[string][]string
	n       int
}

func newJobQueue() *jobQueue { return &jobQueue{byModel: map[string][]string{}} }

func (q *jobQueue) push(model, id string) {
	q.byModel[model] = append(q.byModel[model], id)
	q.n++
}

// pushFront puts a job taken back from a miner ahead of the others.
func (q *jobQueue) pushFront(model, id string) {
	q.byModel[model] = append([]string{id}, q.byModel[model]...)
	q.n++
}

// set replaces a model's queue (after a dispatch pass removed some ids).
func (q *jobQueue) set(model string, ids []string) {
	q.n += len(ids) - len(q.byModel[model])
	if len(ids) == 0 {
		delete(q.byModel, model)
		return
	}
	q.byModel[model] = ids
}

func (q *jobQueue) len() int { return q.n }

// recentJobs keeps the last few thousand finished jobs in memory: clients
// poll a job until it is settled and fetch its results right after.
type recentJobs struct {
	m     map[string]*store.Job
	order []string
}

const recentMax = 4096

func (r *recentJobs) add(j *store.Job) {
	if r.m == nil {
		r.m = map[string]*store.Job{}
	}
	if _, ok := r.m[j.ID]; !ok {
		r.order = append(r.order, j.ID)
	}
	r.m[j.ID] = j
	if len(r.order) > recentMax {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentJobs) get(id string) *store.Job { return r.m[id] }
