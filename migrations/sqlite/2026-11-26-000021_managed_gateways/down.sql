DROP TABLE managed_gateways;
