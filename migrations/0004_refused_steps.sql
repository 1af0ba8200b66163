-- A forward step refused for a business reason (stock short, coupon no longer valid, ...)
-- records its key REFUSED, with the contract's error body as its detail: a re-run of the step
-- (a worker died before the workflow recorded the refusal) answers the same refusal instead of
-- finding the compensation's fence, and the compensation finds nothing to undo.
ALTER TABLE saga_steps DROP CONSTRAINT saga_steps_state_check;
ALTER TABLE saga_steps ADD CONSTRAINT saga_steps_state_check
    CHECK (state IN ('DONE', 'COMPENSATED', 'FENCED', 'REFUSED'));
