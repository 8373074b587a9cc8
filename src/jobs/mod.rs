//! Scheduled jobs. So far: the pure schedule computation ([`schedule`]); the async scheduler
//! with leases and run records comes with the drift monitors (issue 4).

pub mod schedule;
