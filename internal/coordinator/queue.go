package coordinator

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
