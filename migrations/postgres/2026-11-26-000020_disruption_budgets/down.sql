DROP TABLE disruptions;
DROP TABLE disruption_budgets;
