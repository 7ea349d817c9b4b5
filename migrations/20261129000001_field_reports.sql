-- Field reports: costs kept exactly.
--
-- numeric(14, 6) rounded every call's cost to the micro-dollar as it was added, so a
-- project's total drifted from the sum of its calls (4 calls of 1.35e-05 added up to
-- 5.6e-05, not 5.4e-05). Unconstrained numeric keeps every digit of each addition.
ALTER TABLE projects ALTER COLUMN cost_usd TYPE numeric;
ALTER TABLE tasks ALTER COLUMN cost_usd TYPE numeric;
ALTER TABLE tasks ALTER COLUMN reserved_cost_usd TYPE numeric;
