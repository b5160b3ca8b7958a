DROP INDEX gateways_address;
