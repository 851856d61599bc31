"""Running hookrelay on one machine: `hookrelay dev` (`run`) on embedded Postgres and Redis
(`embedded`), the local webhook receiver (`receive`), and a whole set of processes for the
benchmarks and the acceptance tests (`cluster`)."""
