DROP TABLE spend_entries;
DROP TABLE spend_budgets;
