"""One delivery attempt as three stages: `send` (the HTTP request only), `outcome` (what the
answer means and what follows: pure), `record` (the database and the retry's scheduling)."""
