"""The reliability catalogue (../shared/reference/reliability.md, section 8: 55 cases drawn from OWASP, Pillow's
and exifread's known failures and advisories of comparable apps) as an index into this test suite.

Each case names the tests that check it (``file::function`` under tests/) and, where our answer differs from the
catalogue's or part of it is not covered, a note that says so. ``tests/test_catalogue.py`` fails when a case has
no test or names a test that does not exist; ``python -m tests.catalogue`` prints the table as Markdown.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    title: str
    tests: tuple[str, ...]
    note: str = ""


CASES: dict[int, Case] = {
    1: Case("Extension allow-list", (
        "test_hostile_files.py::test_the_name_does_not_decide_the_bytes_do",
        "test_ingest.py::test_what_is_not_a_photo_is_refused_by_its_bytes"),
        "The bytes decide, never the name: x.php holding a JPEG is archived as a JPEG (stored under its content "
        "key, served as image/jpeg); a NUL or empty name is cleaned, not refused."),
    2: Case("Content mismatch", (
        "test_hostile_files.py::test_formats_outside_the_allow_list_are_refused_naming_what_they_are",
        "test_hostile_files.py::test_a_lone_disguised_file_over_http_is_a_415_in_words",
        "test_media.py::test_sniff_reads_bytes_not_names")),
    3: Case("Dangerous formats Pillow would happily open", (
        "test_hostile_files.py::test_formats_outside_the_allow_list_are_refused_naming_what_they_are",
        "test_hostile_files.py::test_ghostscript_is_never_started",
        "test_hostile_files.py::test_the_spy_sees_ghostscript_and_the_eps_parser")),
    4: Case("Pixel-flood bomb", (
        "test_hostile_files.py::test_pixel_floods_are_refused_from_the_header_fast",
        "test_media.py::test_read_header_refuses_a_decompression_bomb_fast_and_without_memory",
        "test_media.py::test_make_derivatives_never_decodes_a_bomb",
        "test_ingest.py::test_a_decompression_bomb_is_refused_from_its_header",
        "test_sandbox.py::test_allocating_far_beyond_the_limit_is_stopped_as_memory")),
    5: Case("Threshold semantics", (
        "test_hostile_files.py::test_our_pixel_limit_decides_not_pillows_global_one",
        "test_hostile_files.py::test_metadata_of_a_photo_above_pillows_limit_but_within_ours_is_read",
        "test_media.py::test_the_pixel_limit_is_ours_not_pillows"),
        "Our own MAX_PIXELS decides, checked on the parsed header; Pillow's global switches are never touched."),
    6: Case("App-level pixel cap below Pillow's", (
        "test_hostile_files.py::test_pixel_floods_are_refused_from_the_header_fast",),
        "MAX_PIXELS defaults to 200 MP (phones with 200 MP sensors exist); the test sets 60 MP as the catalogue."),
    7: Case("Byte-size limit", (
        "test_ingest.py::test_a_file_over_the_size_limit_is_refused_while_streaming",
        "test_views.py::test_an_oversized_file_is_refused_and_its_neighbours_kept",
        "test_views.py::test_uploaded_files_are_spooled_into_the_staging_folder",
        "test_resumable.py::test_too_large_is_refused_in_words_before_and_while_sending")),
    8: Case("Truncated and corrupt images", (
        "test_hostile_files.py::test_truncated_and_corrupt_files_end_in_words_never_a_500",
        "test_media.py::test_a_truncated_jpeg_gives_partial_derivatives",
        "test_media.py::test_undecodable_files_raise_media_error",
        "test_fuzz_ingest.py::test_damaged_headers_end_archived_or_refused_in_words",
        "test_fuzz_ingest.py::test_damaged_structure_ends_archived_or_refused_in_words",
        "test_fuzz_ingest.py::test_spliced_files_end_archived_or_refused_in_words"),
        "A JPEG that merely ends early is archived with what it has (a volunteer's only copy), with a warning."),
    9: Case("Zero, negative and absurd dimensions", (
        "test_hostile_files.py::test_formats_outside_the_allow_list_are_refused_naming_what_they_are",)),
    10: Case("CPU-heavy but legal image", (
        "test_hostile_files.py::test_ten_thousand_png_text_chunks_stay_cheap",
        "test_sandbox.py::test_a_task_that_never_ends_is_stopped_in_time",
        "test_sandbox.py::test_a_photo_whose_derivatives_take_too_long_fails_with_the_reason"),
        "Decoding runs in a child with DECODE_SECONDS of CPU and wall clock; the web process only parses headers."),
    11: Case("exifread IFD cycle", (
        "test_hostile_files.py::test_exif_that_hangs_or_breaks_exifread_is_read_fast",
        "test_hostile_files.py::test_a_photo_with_exif_that_breaks_exifread_is_still_archived")),
    12: Case("exifread huge MakerNote count", (
        "test_hostile_files.py::test_exif_that_hangs_or_breaks_exifread_is_read_fast",
        "test_hostile_files.py::test_a_photo_with_exif_that_breaks_exifread_is_still_archived",
        "test_sandbox.py::test_a_photo_whose_metadata_reader_is_stopped_is_archived_without_it")),
    13: Case("exifread exception escape", (
        "test_hostile_files.py::test_a_photo_with_exif_that_breaks_exifread_is_still_archived",
        "test_hostile_files.py::test_a_heif_named_jpg_is_taken_for_what_it_is",
        "test_metadata.py::test_exifread_raising_still_returns_with_a_warning_and_pillow_fallback",
        "test_metadata.py::test_garbage_never_raises"),
        "The exception's type goes to the photo's metadata_warnings (seen by curators), not only to the log."),
    14: Case("Hostile EXIF strings", (
        "test_hostile_files.py::test_hostile_text_from_the_file_is_stored_clean",
        "test_hostile_files.py::test_hostile_text_is_escaped_on_every_page",
        "test_workflow.py::test_typed_text_is_stored_without_control_characters_or_direction_overrides",
        "test_metadata.py::test_field_lengths_are_capped")),
    15: Case("Metadata stripped from public derivatives (bytes, not UI)", (
        "test_hostile_files.py::test_public_derivatives_carry_nothing_of_the_source",
        "test_media.py::test_derivatives_of_a_stuffed_jpeg_carry_no_metadata",
        "test_media.py::test_corpus_camera_jpegs_all_make_clean_derivatives")),
    16: Case("Orientation correctness", (
        "test_media.py::test_exif_orientation_is_applied",
        "test_media.py::test_orientation_of_the_corpus_files")),
    17: Case("Polyglot / active content", (
        "test_hostile_files.py::test_polyglots_are_archived_but_their_payload_goes_nowhere",)),
    18: Case("Filename handling", (
        "test_hostile_files.py::test_original_names_are_kept_safely_and_downloads_name_them_safely",
        "test_ingest.py::test_filenames_are_kept_without_paths_or_control_characters",
        "test_storage.py::test_content_key_format"),
        "Storage keys are SHA-256 content keys (write-once, deduplicating), not UUIDs."),
    19: Case("Duplicate upload", (
        "test_ingest.py::test_the_same_photo_twice_links_to_the_first",
        "test_views.py::test_a_duplicate_of_another_associations_photo_reveals_nothing")),
    20: Case("Anonymous sees only published", (
        "test_access_matrix.py::test_every_get_for_every_role_and_photo_state",
        "test_views.py::test_who_sees_which_image",
        "test_gallery.py::test_the_feed_is_atom_without_private_data"),
        "404 for hidden and missing photos alike; response timing is not compared."),
    21: Case("Cross-tenant IDOR", (
        "test_access_matrix.py::test_every_post_for_every_role_and_photo_state",
        "test_access_matrix.py::test_every_get_for_every_role_and_photo_state")),
    22: Case("Id guessing", (
        "test_access_matrix.py::test_every_get_for_every_role_and_photo_state",),
        "By design photos have numbers (\"Foto Nr. 17\" on prints and in exhibitions), so URLs use them; a hidden "
        "photo answers exactly like a missing one, so a number reveals nothing but that photos are counted."),
    23: Case("Mass assignment / field-level", (
        "test_workflow.py::test_request_fields_cannot_change_owner_or_status",
        "test_accounts.py::test_a_person_changes_their_name_but_not_their_role")),
    24: Case("Role-transition abuse", (
        "test_admin.py::test_nobody_but_an_admin_changes_a_role",
        "test_admin.py::test_the_last_active_admin_cannot_demote_or_disable_themselves")),
    25: Case("Permission changes take effect immediately", (
        "test_admin.py::test_disabling_an_account_ends_its_sessions_and_tokens",)),
    26: Case("Search does not leak unpublished content", (
        "test_search.py::test_nothing_of_an_unpublished_photo_reaches_a_visitor",
        "test_search.py::test_visitors_find_only_published_photos",
        "test_web_security.py::test_a_member_of_another_association_finds_nothing_of_it_either")),
    27: Case("Unpublish, withdraw consent, delete", (
        "test_workflow.py::test_withdrawn_consent_unpublishes_at_once_pages_media_and_search",
        "test_gallery.py::test_a_withdrawn_photo_vanishes_from_every_page_at_once",
        "test_storage.py::test_an_expired_download_url_is_refused",
        "test_web_security.py::test_originals_go_out_as_short_signed_attachments_and_the_bucket_answers_no_one_else")),
    28: Case("Publication consent gate", (
        "test_workflow.py::test_a_new_photo_cannot_be_published_and_the_refusal_names_every_gap",
        "test_workflow.py::test_the_gate_asks_for_the_legal_basis_of_people_shown",
        "test_workflow.py::test_only_curators_justify_a_public_event")),
    29: Case("S3 bucket is not public", (
        "test_web_security.py::test_originals_go_out_as_short_signed_attachments_and_the_bucket_answers_no_one_else",
        "test_storage.py::test_ensure_bucket_creates_a_private_bucket"),
        "A least-privilege key is the operator's to make; the test user owns its bucket."),
    30: Case("Presigned URL scope", (
        "test_web_security.py::test_originals_go_out_as_short_signed_attachments_and_the_bucket_answers_no_one_else",
        "test_storage.py::test_download_url",
        "test_storage.py::test_an_expired_download_url_is_refused")),
    31: Case("CSRF on every state-changing route", (
        "test_web_security.py::test_no_state_changing_route_works_for_a_cookie_without_the_forms_token",
        "test_web_security.py::test_no_get_changes_anything",
        "test_accounts.py::test_csrf_is_needed_with_a_cookie_but_not_with_a_token"),
        "Form tokens do not expire (WTF_CSRF_TIME_LIMIT=None): they live as long as the session."),
    33: Case("Session cookie flags", (
        "test_web_security.py::test_the_session_cookie_is_httponly_lax_and_secure_over_tls",
        "test_web_security.py::test_with_secure_cookies_configured_the_cookie_is_host_only")),
    34: Case("Session fixation and rotation", (
        "test_web_security.py::test_logging_in_starts_a_fresh_session_and_a_planted_one_gives_nothing",
        "test_accounts.py::test_logging_out_ends_the_session_for_a_copied_cookie_too"),
        "No idle or absolute session timeout yet: a session lasts until logout (or a password change)."),
    35: Case("Security headers on every response type", (
        "test_web_security.py::test_every_kind_of_answer_carries_the_security_headers",
        "test_web_security.py::test_hsts_follows_the_scheme_a_trusted_proxy_reports_and_only_then",
        "test_web_security.py::test_pages_for_someone_logged_in_are_not_stored_by_caches",
        "test_views.py::test_every_page_carries_the_security_headers")),
    37: Case("XSS through every user-controlled field", (
        "test_hostile_files.py::test_hostile_text_is_escaped_on_every_page",
        "test_web_security.py::test_the_login_never_sends_people_to_another_site",
        "test_web_security.py::test_the_language_switch_never_sends_people_to_another_site",
        "test_web_security.py::test_the_search_query_is_escaped_where_the_page_shows_it")),
    38: Case("SQL injection in sort, filter and search parameters", (
        "test_web_security.py::test_odd_search_and_filter_parameters_are_refused_or_ignored_never_an_error",)),
    39: Case("Login brute force and enumeration", (
        "test_web_security.py::test_an_unknown_name_and_a_wrong_password_get_the_same_answer_in_the_same_time",
        "test_web_security.py::test_the_limit_answers_the_same_for_known_and_unknown_names",
        "test_web_security.py::test_a_forged_forwarded_for_cannot_get_past_the_limit_behind_one_proxy",
        "test_accounts.py::test_too_many_failures_for_a_name_are_refused_without_checking_the_password",
        "test_accounts.py::test_too_many_failures_from_one_address_are_refused")),
    40: Case("Password storage and policy", (
        "test_accounts.py::test_an_invitation_checks_the_name_and_password",),
        "Hashes are argon2id (argon2-cffi defaults); their parameters and a common-password list are not tested."),
    41: Case("Secrets and debug in configuration", (
        "test_web_security.py::test_a_short_secret_key_is_refused_at_start",
        "test_web_security.py::test_without_a_configured_key_a_long_random_one_is_made_and_debug_is_off",
        "test_web_security.py::test_a_500_shows_no_traceback_and_keeps_the_headers",
        "test_web_security.py::test_nothing_outside_the_static_folder_is_served")),
    42: Case("Host header and open redirect", (
        "test_web_security.py::test_with_trusted_hosts_a_foreign_host_header_is_refused",
        "test_web_security.py::test_links_given_out_use_base_url_not_the_requests_host")),
    32: Case("Cross-site request with browser semantics", (
        "e2e/test_browser_security.py::test_another_site_cannot_make_a_curator_publish",)),
    36: Case("CSP actually blocks injected script", (
        "e2e/test_browser_security.py::test_script_injected_into_a_page_is_blocked_by_the_policy",)),
    43: Case("S3 endpoint refuses connections during upload", (
        "test_faults.py::test_s3_fault_during_a_form_upload_is_a_quick_clear_503_and_the_retry_works",
        "test_faults.py::test_s3_fault_at_the_last_chunk_is_a_quick_clear_503_and_the_browser_finishes_it_later",
        "test_s3_flow.py::test_s3_down_during_an_upload_is_a_clear_503",
        "test_storage.py::test_an_unreachable_endpoint_is_storage_unavailable_quickly")),
    44: Case("S3 black-holes, slow S3", (
        "test_faults.py::test_s3_fault_during_a_form_upload_is_a_quick_clear_503_and_the_retry_works",
        "test_faults.py::test_s3_fault_at_the_last_chunk_is_a_quick_clear_503_and_the_browser_finishes_it_later",
        "test_storage.py::test_a_server_that_never_answers_times_out_as_storage_unavailable"),
        "With the default S3 timeouts a hanging service is a 503 after ~12 s; the tests measure ~8 s at 3 s."),
    45: Case("Connection cut mid-body", (
        "test_faults.py::test_a_connection_cut_mid_body_is_retried_or_refused_cleanly_never_a_partial_object",
        "test_crash_consistency.py::test_a_multipart_upload_cut_by_a_crash_is_aborted_by_reconcile")),
    46: Case("Checksum mismatch / compatibility", (
        "test_storage.py::test_both_checksum_settings_work_against_the_server",),
        "Only the compatibility half: uploads do not yet send a SHA-256 for the server to verify (issue 9)."),
    47: Case("Process killed mid-upload", (
        "test_crash_consistency.py::test_killed_at_a_point_the_restarted_archive_finishes_or_cleans_the_photo",
        "test_indexing.py::test_a_writer_killed_mid_batch_is_repaired_by_the_outbox")),
    48: Case("Disk full in the temp/upload dir", (
        "test_faults.py::test_a_full_staging_disk_refuses_a_form_upload_in_words_and_keeps_nothing",
        "test_faults.py::test_a_full_staging_disk_refuses_a_chunk_and_the_upload_resumes_once_there_is_room",
        "test_faults.py::test_a_really_full_staging_disk_with_both_ways_in"),
        "The tmpfs variant needs root to mount; elsewhere it is skipped with that reason (the others still run)."),
    49: Case("Whoosh write lock held by another process", (
        "test_faults.py::test_the_index_lock_held_elsewhere_slows_no_request_and_the_writer_catches_up",
        "test_search.py::test_a_writer_in_another_process_raises_index_busy")),
    50: Case("Whoosh index corrupted", (
        "test_faults.py::test_a_lost_or_damaged_index_is_a_503_in_words_and_the_writer_rebuilds_it",
        "test_faults.py::test_an_index_that_opens_but_a_reader_found_unreadable_is_rebuilt_by_the_writer",
        "test_search.py::test_a_corrupt_index_is_unavailable_and_a_rebuild_repairs_it",
        "test_indexing.py::test_the_writer_rebuilds_a_lost_or_damaged_index_by_itself")),
    51: Case("SQLite database locked", (
        "test_faults.py::test_a_locked_database_refuses_uploads_with_503_and_reads_go_on",
        "test_views.py::test_a_locked_database_is_a_503_and_leaves_nothing"),
        "The PostgreSQL variant (lock_timeout) is not written yet."),
    52: Case("Concurrent uploads", (
        "test_load_smoke.py::test_a_short_load_loses_nothing_and_answers_no_5xx",
        "test_load_smoke.py::test_the_accounting_notices_lost_doubled_and_wrongly_answered_photos"),
        "The full run is `python -m bench.load` (20 uploaders, 50 searchers, 60 s); figures in bench/load/NOTE.md."),
    53: Case("Concurrent search while indexing", (
        "test_load_smoke.py::test_a_short_load_loses_nothing_and_answers_no_5xx",
        "test_search.py::test_searches_from_several_threads",
        "test_search.py::test_rebuild_swaps_atomically_while_searchers_keep_working")),
    54: Case("SQLite write contention", (
        "test_load_smoke.py::test_a_short_load_loses_nothing_and_answers_no_5xx",
        "test_workflow.py::test_a_publication_and_a_withdrawal_at_the_same_moment_cannot_both_land")),
    55: Case("Rate limiter across workers", (
        "test_web_security.py::test_the_login_limit_holds_exactly_across_workers_even_for_simultaneous_attempts",
        "test_web_security.py::test_attempts_reserved_at_the_same_moment_cannot_both_pass"),
        "Counted in the database (no Redis needed): every worker and host sees the same count."),
}


def markdown() -> str:
    lines = ["| # | Case | Tests | Note |", "|---|---|---|---|"]
    for number, case in sorted(CASES.items()):
        tests = "<br>".join(f"`{test}`" for test in case.tests)
        lines.append(f"| {number} | {case.title} | {tests} | {case.note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
