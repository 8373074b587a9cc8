// The PostgreSQL and SQLite migrations are embedded with `sqlx::migrate!`; rebuild when one is
// added or changed (cargo does not track the directory otherwise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
