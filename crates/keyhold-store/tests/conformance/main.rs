//! The `MetadataStore` conformance suite, written once and run against every engine:
//! SQLite on a file, SQLite in memory, PostgreSQL and the in-memory engine (see `harness.rs` for how the
//! PostgreSQL cases find their database).

mod cks;
mod claims;
mod documents;
mod fixtures;
mod harness;
mod indexes;
mod key_materials;
mod keys;
mod misc;
mod specific;
mod upgrade;

/// Generates, for one engine, a test per case: `engine::module::case`.
macro_rules! engine {
    ($engine:ident: $($module:ident { $($case:ident),* $(,)? })*) => {
        mod $engine {
            $(
                mod $module {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                        async fn $case() {
                            let Some(h) = crate::harness::$engine().await else { return };
                            crate::$module::$case(&h.ctx).await;
                            h.finish().await;
                        }
                    )*
                }
            )*
        }
    };
}

/// The case list, once; every engine runs all of it.
macro_rules! suite {
    ($($engine:ident),*) => {
        $(
            engine! { $engine:
                keys {
                    insert_get_roundtrip, insert_requires_version_1, duplicate_key_id_conflicts,
                    insert_is_atomic, mismatched_material_is_refused, update_compare_and_set,
                    delete_removes_materials_and_claims, list_pages_in_byte_order,
                    materials, count_keys_in_store,
                }
                key_materials {
                    add_and_remove_with_the_document, failed_change_changes_nothing,
                    race_document_and_material_agree,
                }
                cks {
                    insert_get_update, update_compare_and_set, duplicate_id_conflicts,
                    update_without_claims_keeps_them, update_replaces_claims, delete_rules,
                    quota, list_pages, list_in_states,
                }
                claims {
                    exclusive_conflict_returns_scope, shared_with_shared_is_fine,
                    shared_then_exclusive_conflicts, exclusive_then_shared_conflicts,
                    key_and_store_claims_share_the_namespace, update_keeping_own_claims,
                    update_taking_a_taken_claim_changes_nothing, duplicate_claims_in_one_call,
                }
                documents {
                    insert_get_roundtrip, update_compare_and_set, claims, list_pages,
                    reset_clears_documents, race_increments,
                }
                indexes {
                    written_with_the_row, failed_insert_writes_no_entries,
                    update_replaces_or_keeps, failed_update_keeps_old_entries,
                    list_in_value_order_with_paging, exact_value_lookup,
                    removed_on_delete, reset_clears_indexes, race_updates_leave_one_entry,
                    race_inserts_leave_the_winners_entry,
                }
                misc {
                    leases, leases_across_nodes, reset_wipes_everything, race_same_name,
                    race_quota, race_shared_and_exclusive, race_lease,
                }
            }
        )*
    };
}

suite!(sqlite, sqlite_memory, postgres, memory);
