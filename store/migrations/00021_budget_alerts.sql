-- +goose Up
-- The monthly budget's thresholds already logged: one row per threshold per
-- month, so that however many pages and callbacks find the spend past 80 %
-- at once, the event is logged once (see Store.CheckBudget).
CREATE TABLE budget_alerts (
    month     TEXT    NOT NULL, -- YYYY-MM, UTC
    threshold INTEGER NOT NULL, -- percent of the budget: 80, 100
    spend     REAL    NOT NULL, -- the month's spend when it was found
    budget    REAL    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (month, threshold)
);

-- +goose Down
DROP TABLE budget_alerts;
