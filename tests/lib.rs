//! End-to-end tests of Parley live in `tests/`: each starts the local stack and drives
//! it over HTTP as a user, a carrier or a CRM would.
