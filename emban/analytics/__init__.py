"""Everything ClickHouse: versioned DDL, the two stores (chDB embedded, HTTP), the planner."""
