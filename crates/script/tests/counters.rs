//! `swarmer.count`: counters are ordinary stats entries recorded on workers,
//! also when the script declares master-side extensions.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn counters_are_entries_recorded_on_workers() {
    let code = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  swarmer.count("orders")
  swarmer.count("items", 3)
  swarmer.count("none", 0)
  swarmer.sleep(0.01)
end)
swarmer.ui.view { id = "v", render = function() end }
"#;
    let stats = run_users(
        code,
        Default::default(),
        &[("U", 2)],
        |s| {
            s.entry("COUNT", "orders")
                .is_some_and(|e| e.num_requests >= 10)
        },
        Duration::from_secs(10),
    );
    let orders = stats.entry("COUNT", "orders").unwrap();
    let items = stats.entry("COUNT", "items").unwrap();
    assert_eq!(items.num_requests, 3 * orders.num_requests);
    assert_eq!((items.num_failures, items.max_response_time_us), (0, 0));
    assert!(stats.entry("COUNT", "none").is_none());
    assert!(stats.exceptions().next().is_none());
}
