/* The C binding, compiled with the system C compiler: what it reproduces of
 * protocol/vectors/blindmatch-v1.json (test.sh writes vectors.h from it), and
 * how it refuses bad input: a status and a message, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blindmatch.h"
#include "vectors.h"

static int failures = 0;

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      char why[256] = "";                                                          \
      bm_last_error(why, sizeof why);                                              \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__,      \
              __LINE__, #cond, why);                                               \
      failures++;                                                                  \
    }                                                                              \
  } while (0)

static size_t unhex(const char *hex, uint8_t *out) {
  size_t n = strlen(hex) / 2;
  for (size_t i = 0; i < n; i++) {
    unsigned int b;
    sscanf(hex + 2 * i, "%2x", &b);
    out[i] = (uint8_t)b;
  }
  return n;
}

int main(void) {
  uint8_t statement[512], signature[64], key[32], id[32], want[32];
  size_t statement_len = unhex(VECTOR_STATEMENT, statement);
  unhex(VECTOR_SIGNATURE, signature);
  unhex(VECTOR_VERIFYING_KEY, key);

  /* The manifest verifies and says what it signed. */
  struct BmManifest *manifest = NULL;
  CHECK(bm_manifest_verify(statement, statement_len, signature, 64, key, 32, &manifest) ==
        BM_STATUS_OK);
  CHECK(bm_manifest_version(manifest) == 2);
  CHECK(bm_manifest_table_id(manifest, id) == BM_STATUS_OK);
  unhex(VECTOR_V2_TABLE_ID, want);
  CHECK(memcmp(id, want, 32) == 0);

  /* SPEC 15.6: pinned to one organisation (here the vector's key stands for
   * one) that did not co-sign, the manifest is refused and unchanged; a
   * quorum out of range is the app's input error. */
  {
    struct BmCoSignature junk = {key, 31, (const uint8_t *)"x", 1, signature, 64};
    CHECK(bm_manifest_require_quorum(manifest, key, 1, 1, &junk, 1) == BM_STATUS_QUORUM);
    char why[512];
    CHECK(bm_last_error(why, sizeof why) > 0);
    CHECK(strstr(why, "0 valid co-signature(s)") != NULL);
    CHECK(bm_manifest_require_quorum(manifest, key, 1, 2, NULL, 0) == BM_STATUS_INPUT);
    CHECK(bm_manifest_cosigners(manifest, NULL, 0) == 0);
    CHECK(bm_manifest_version(manifest) == 2);
  }

  /* SPEC 16.6: pinned to a log (the log vectors' key), a manifest without a
   * log proof, or with one that does not parse, is refused; a policy that
   * does not parse is too. */
  {
    const char *text =
        "log blindmatch.example/log+2b91c4ee+AdBKsjJ0K7SrOhNovUYV5ObQIkq3GgFrr4UgozLJd4c3\n"
        "quorum none\n";
    struct BmLogPolicy *policy = NULL;
    CHECK(bm_log_policy_parse((const uint8_t *)text, strlen(text), &policy) == BM_STATUS_OK);
    CHECK(bm_manifest_require_logged(manifest, policy, NULL, 0, NULL, 0, NULL, 0) == BM_STATUS_LOG);
    char why[512];
    CHECK(bm_last_error(why, sizeof why) > 0);
    CHECK(strstr(why, "no log proof") != NULL);
    const char *junk = "c2sp.org/tlog-proof@v1\nindex 0\n\nnot a note\n";
    CHECK(bm_manifest_require_logged(manifest, policy, (const uint8_t *)junk, strlen(junk), NULL, 0,
                                     NULL, 0) == BM_STATUS_LOG);
    CHECK(bm_manifest_log_size(manifest) == 0);
    const char *bad = "log nobody\nquorum none\n";
    struct BmLogPolicy *none = NULL;
    CHECK(bm_log_policy_parse((const uint8_t *)bad, strlen(bad), &none) == BM_STATUS_LOG);
    bm_log_policy_free(policy);
  }

  /* Threshold mode (SPEC Section 14): the manifest says t; the table takes
   * only account vouchers, made in batches under an account secret. */
  {
    uint8_t t_statement[512], t_signature[64], t_key[32];
    size_t t_len = unhex(VECTOR_THRESHOLD_STATEMENT, t_statement);
    unhex(VECTOR_THRESHOLD_SIGNATURE, t_signature);
    unhex(VECTOR_THRESHOLD_VERIFYING_KEY, t_key);
    struct BmManifest *t_manifest = NULL;
    CHECK(bm_manifest_verify(t_statement, t_len, t_signature, 64, t_key, 32, &t_manifest) ==
          BM_STATUS_OK);
    CHECK(bm_manifest_threshold(t_manifest) == VECTOR_THRESHOLD_T);
    CHECK(bm_manifest_threshold(manifest) == 0);

    static uint8_t saved_table[4096];
    size_t saved_table_len = unhex(VECTOR_V1_TABLE, saved_table);
    struct BmTable *t_table = NULL;
    CHECK(bm_table_open(saved_table, saved_table_len, t_manifest, &t_table) == BM_STATUS_OK);
    size_t t_voucher_len = bm_table_voucher_len(t_table);
    CHECK(t_voucher_len == 1 + 32 + 3 * 80 + 1164 + 8 * VECTOR_THRESHOLD_S + 16);
    uint8_t *t_vouchers = malloc(2 * t_voucher_len);
    uint8_t md5[16] = {7};
    CHECK(bm_table_voucher(t_table, 1, md5, 16, NULL, 0, t_vouchers, t_voucher_len) ==
          BM_STATUS_MODE);

    uint8_t account_file[128], account_id[64], want_id[64];
    size_t account_len = unhex(VECTOR_ACCOUNT, account_file);
    size_t want_id_len = unhex(VECTOR_ACCOUNT_ID, want_id);
    struct BmAccount *account = NULL;
    CHECK(bm_account_decode(account_file, account_len, &account) == BM_STATUS_OK);
    CHECK(bm_account_id(account, account_id, sizeof account_id) == want_id_len);
    CHECK(memcmp(account_id, want_id, want_id_len) == 0);
    uint8_t again[128];
    CHECK(bm_account_encode(account, again, sizeof again) == account_len);
    CHECK(memcmp(again, account_file, account_len) == 0);
    account_file[0] ^= 1;
    struct BmAccount *damaged_account = NULL;
    CHECK(bm_account_decode(account_file, account_len, &damaged_account) == BM_STATUS_ACCOUNT);
    CHECK(damaged_account == NULL);

    /* Two uploads: an MD5 with associated data and a SHA-256 without. */
    uint8_t ids[32], sha256[32] = {9}, sid[16] = {0}, digest[32] = {0}, zero[32] = {0};
    memset(ids, 0x11, 16);
    memset(ids + 16, 0x22, 16);
    const uint8_t types[2] = {1, 3};
    const uint8_t *values[2] = {md5, sha256};
    const size_t value_lens[2] = {16, 32};
    const uint8_t *ads[2] = {(const uint8_t *)"photo 1", NULL};
    const size_t ad_lens[2] = {7, 0};
    CHECK(bm_account_submission(t_table, account, 2, ids, types, values, value_lens, ads, ad_lens,
                                t_vouchers, 2 * t_voucher_len, sid, digest) == BM_STATUS_OK);
    CHECK(t_vouchers[0] == 2 && t_vouchers[t_voucher_len] == 2);
    CHECK(memcmp(sid, zero, 16) != 0 && memcmp(digest, zero, 32) != 0);
    CHECK(bm_account_submission(t_table, account, 2, ids, types, values, value_lens, NULL, NULL,
                                t_vouchers, 2 * t_voucher_len - 1, sid, NULL) ==
          BM_STATUS_BUFFER_TOO_SMALL);
    const uint8_t bad_types[2] = {1, 9};
    CHECK(bm_account_submission(t_table, account, 2, ids, bad_types, values, value_lens, NULL,
                                NULL, t_vouchers, 2 * t_voucher_len, sid, NULL) ==
          BM_STATUS_INPUT);
    char why[512] = "";
    bm_last_error(why, sizeof why);
    CHECK(strncmp(why, "upload 1:", 9) == 0);

    /* The version-1 table takes no account vouchers. */
    struct BmTable *plain = NULL;
    CHECK(bm_table_open_unverified(saved_table, saved_table_len, &plain) == BM_STATUS_OK);
    CHECK(bm_account_submission(plain, account, 2, ids, types, values, value_lens, NULL, NULL,
                                t_vouchers, 2 * t_voucher_len, sid, NULL) ==
          BM_STATUS_MODE);

    t_signature[0] ^= 1;
    struct BmManifest *t_refused = NULL;
    CHECK(bm_manifest_verify(t_statement, t_len, t_signature, 64, t_key, 32, &t_refused) ==
          BM_STATUS_BAD_SIGNATURE);
    CHECK(t_refused == NULL);
    free(t_vouchers);
    bm_table_free(plain);
    bm_table_free(t_table);
    bm_account_free(account);
    bm_manifest_free(t_manifest);
  }

  /* A flipped bit, another key, a short signature. */
  struct BmManifest *refused = NULL;
  statement[12] ^= 1;
  CHECK(bm_manifest_verify(statement, statement_len, signature, 64, key, 32, &refused) ==
        BM_STATUS_BAD_SIGNATURE);
  statement[12] ^= 1;
  uint8_t base_point[32] = {0x58};
  memset(base_point + 1, 0x66, 31);
  CHECK(bm_manifest_verify(statement, statement_len, signature, 64, base_point, 32, &refused) ==
        BM_STATUS_BAD_SIGNATURE);
  CHECK(bm_manifest_verify(statement, statement_len, signature, 63, key, 32, &refused) ==
        BM_STATUS_INVALID);
  CHECK(bm_manifest_verify(statement, statement_len, signature, 64, key, 31, &refused) ==
        BM_STATUS_INPUT);
  CHECK(bm_manifest_verify(NULL, 5, signature, 64, key, 32, &refused) == BM_STATUS_NULL);
  CHECK(refused == NULL);
  char message[256];
  CHECK(bm_last_error(message, sizeof message) > 1 && strstr(message, "NULL") != NULL);

  /* Version 1's table id, and the delta to version 2. */
  static uint8_t v1[4096];
  size_t v1_len = unhex(VECTOR_V1_TABLE, v1);
  struct BmTable *held = NULL, *v2 = NULL;
  CHECK(bm_table_open_unverified(v1, v1_len, &held) == BM_STATUS_OK);
  CHECK(bm_table_id(held, id) == BM_STATUS_OK);
  unhex(VECTOR_V1_TABLE_ID, want);
  CHECK(memcmp(id, want, 32) == 0);
  struct BmDelta *delta = NULL;
  CHECK(bm_delta_new(held, manifest, &delta) == BM_STATUS_OK);
  for (size_t i = 0; i < VECTOR_DELTA_LEN; i++) {
    uint32_t s = VECTOR_DELTA_SLOTS[i];
    uint8_t index[4] = {(uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8), (uint8_t)s};
    uint8_t after[32];
    unhex(VECTOR_DELTA_AFTER[i], after);
    CHECK(bm_delta_push(delta, index, 4, after, 32) == BM_STATUS_OK);
  }
  CHECK(bm_delta_finish(delta, held, &v2) == BM_STATUS_OK);
  CHECK(bm_table_id(v2, id) == BM_STATUS_OK);
  unhex(VECTOR_V2_TABLE_ID, want);
  CHECK(memcmp(id, want, 32) == 0);
  CHECK(bm_delta_finish(delta, held, &v2) == BM_STATUS_STATE);
  CHECK(bm_delta_push(delta, (const uint8_t *)"abc", 3, NULL, 0) == BM_STATUS_STATE);
  bm_delta_free(delta);

  /* Vouchers: one length for all; bad items and data refused. */
  size_t len = bm_table_voucher_len(v2);
  CHECK(len == 1 + 32 + 3 * 80 + 1108);
  uint8_t *voucher = malloc(len);
  uint8_t md5[16] = {1}, ad[1025] = {0};
  CHECK(bm_table_voucher(v2, 1, md5, 16, ad, 1024, voucher, len) == BM_STATUS_OK);
  CHECK(voucher[0] == 1);
  CHECK(bm_table_voucher(v2, 1, md5, 15, NULL, 0, voucher, len) == BM_STATUS_INPUT);
  CHECK(bm_table_voucher(v2, 9, md5, 16, NULL, 0, voucher, len) == BM_STATUS_INPUT);
  CHECK(bm_table_voucher(v2, 1, md5, 16, ad, 1025, voucher, len) == BM_STATUS_INPUT);
  CHECK(bm_table_voucher(v2, 1, md5, 16, NULL, 0, voucher, len - 1) ==
        BM_STATUS_BUFFER_TOO_SMALL);
  free(voucher);
  uint8_t sid[16] = {0}, zero[16] = {0};
  CHECK(bm_submission_id(sid) == BM_STATUS_OK && memcmp(sid, zero, 16) != 0);

  /* History: record, persist, restore, refuse damage. */
  struct BmHistory *history = NULL, *restored = NULL;
  CHECK(bm_history_new(key, 32, NULL, 0, &history) == BM_STATUS_OK);
  CHECK(bm_history_encode(history, NULL, 0) == 0);
  struct BmAccepted *accepted = NULL;
  CHECK(bm_history_check(history, manifest, &accepted) == BM_STATUS_OK && accepted != NULL);
  CHECK(bm_history_record(history, accepted) == BM_STATUS_OK); /* frees it */
  uint8_t saved[512];
  size_t saved_len = bm_history_encode(history, saved, sizeof saved);
  CHECK(saved_len == statement_len + 64);
  CHECK(bm_history_new(key, 32, saved, saved_len, &restored) == BM_STATUS_OK);
  CHECK(bm_history_check(restored, manifest, &accepted) == BM_STATUS_OK);
  bm_accepted_free(accepted);
  saved[20] ^= 1;
  struct BmHistory *damaged = NULL;
  CHECK(bm_history_new(key, 32, saved, saved_len, &damaged) == BM_STATUS_HISTORY);

  /* A download refuses a chunk that is not the table's. */
  struct BmDownload *download = NULL;
  struct BmTable *none = NULL;
  CHECK(bm_download_new(manifest, &download) == BM_STATUS_OK);
  CHECK(bm_download_push(download, 0, v1 + 74, 16 * 32, NULL, 0) == BM_STATUS_INVALID);
  CHECK(bm_download_push(download, 0, v1 + 74, 16 * 32, v1, 31) == BM_STATUS_MALFORMED);
  CHECK(bm_download_offset(download) == 0);
  CHECK(bm_download_finish(download, &none) == BM_STATUS_INVALID);
  CHECK(none == NULL);
  bm_download_free(download);

  bm_history_free(history);
  bm_history_free(restored);
  bm_table_free(held);
  bm_table_free(v2);
  bm_manifest_free(manifest);
  bm_manifest_free(NULL);
  if (failures) {
    fprintf(stderr, "c: %d checks failed\n", failures);
    return 1;
  }
  printf("c: all checks passed\n");
  return 0;
}
