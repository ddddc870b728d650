/* Checking items with the C binding: the whole client flow over the core,
 * in both modes, and what to do with a refused table.
 *
 *   check [--account FILE --max-uploads N] OPERATOR_KEY_HEX DIR TYPE:HEX[:NOTE] ...
 *
 * The C binding is transport-free: the app's own networking fetched what is
 * in DIR (the `GetManifest` response's `statement` and `signature`, and the
 * table `DownloadTable` streamed, as raw bytes in files of those names), and
 * sends what this prints as one `SubmitRequest`:
 *
 *   table_id HEX / submission_id HEX / account_id HEX (threshold mode) /
 *   voucher HEX (one line per item)
 *
 * DIR/history is the example's own record of the versions it verified (a
 * rollback or equivocation is refused across runs). With --account, the
 * table must be in threshold mode: FILE keeps the account's secret (made on
 * the first run, with its synthetic rate chosen from the table's bound s
 * and N, the most uploads the account sends under one threshold).
 *
 * Build: cc -std=c11 -I include check.c lib/libblindmatch.a -lpthread -ldl -lm
 * Exit status: 0 sent, 1 usage or I/O, 3 a refused table (nothing to send).
 */
#define _POSIX_C_SOURCE 200809L /* open(2)'s mode, for the secret's file */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blindmatch.h"

#define MAX_ITEMS 64 /* at most the manifest's max_batch per SubmitRequest */

static int fail(const char *what) {
  char why[512];
  bm_last_error(why, sizeof why);
  fprintf(stderr, "check: %s: %s\n", what, why);
  return 1;
}

/* The whole file at `path` into a malloc'd buffer (NULL if it is missing). */
static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len == cap) {
      cap = cap ? 2 * cap : 65536;
      uint8_t *grown = realloc(buf, cap);
      if (!grown) break;
      buf = grown;
    }
    size_t n = fread(buf + *len, 1, cap - *len, f);
    if (n == 0) break;
    *len += n;
  }
  fclose(f);
  return buf ? buf : malloc(1);
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return read_file(path, len);
}

/* Whole or not at all: written beside (the owner's alone, not through a
   link), then renamed over. */
static int save_file(const char *path, const uint8_t *bytes, size_t len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  unlink(tmp); /* what a crash left */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  if (fd < 0) return -1;
  int ok = write(fd, bytes, len) == (ssize_t)len && fsync(fd) == 0;
  if (close(fd) != 0 || !ok) return -1;
  return rename(tmp, path);
}

static int save(const char *dir, const char *name, const uint8_t *bytes, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return save_file(path, bytes, len);
}

static int unhex(const char *s, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static void print_hex(const char *field, const uint8_t *b, size_t n) {
  printf("%s ", field);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
}

/* `TYPE:HEX[:NOTE]`, TYPE one of SPEC Section 3's names. */
struct item {
  uint8_t type;
  uint8_t value[64];
  size_t value_len;
  const char *note;
};

static int parse_item(char *text, struct item *it) {
  static const char *types[] = {"md5", "sha1", "sha256", "pdq", "bytes"};
  char *hex = strchr(text, ':');
  if (!hex) return -1;
  *hex++ = '\0';
  char *note = strchr(hex, ':');
  if (note) *note++ = '\0';
  it->note = note ? note : "";
  it->type = 0;
  for (uint8_t t = 0; t < 5; t++)
    if (strcmp(text, types[t]) == 0) it->type = t + 1;
  it->value_len = strlen(hex) / 2;
  if (!it->type || strlen(hex) % 2 || it->value_len > sizeof it->value) return -1;
  return unhex(hex, it->value_len, it->value);
}

/* The account's secret: restored from `path`, or made and saved there. */
static struct BmAccount *load_account(const char *path, const struct BmManifest *m, long max_uploads) {
  struct BmAccount *account = NULL;
  size_t len;
  uint8_t *saved = read_file(path, &len);
  if (saved) {
    enum BmStatus s = bm_account_decode(saved, len, &account);
    free(saved);
    return s == BM_STATUS_OK ? account : NULL;
  }
  /* At most s / 2N (README, "Choosing the synthetic rate"): the account's
     synthetic vouchers stay near half the bound, within which t real
     matches are always detected. */
  double rate = (double)bm_manifest_synthetic_bound(m) / (2.0 * (double)max_uploads);
  const char *id = "account-1"; /* the platform's opaque name for the account */
  if (bm_account_generate((const uint8_t *)id, strlen(id), rate > 1 ? 1 : rate, &account) != BM_STATUS_OK)
    return NULL;
  uint8_t secret[1024];
  size_t n = bm_account_encode(account, secret, sizeof secret);
  /* A secret: an app keeps it as it keeps the account's other secrets. */
  if (n > sizeof secret || save_file(path, secret, n) != 0) {
    bm_account_free(account);
    return NULL;
  }
  return account;
}

int main(int argc, char **argv) {
  const char *account_file = NULL;
  long max_uploads = 0;
  int a = 1;
  while (a + 1 < argc && strncmp(argv[a], "--", 2) == 0) {
    if (strcmp(argv[a], "--account") == 0) account_file = argv[a + 1];
    else if (strcmp(argv[a], "--max-uploads") == 0) max_uploads = strtol(argv[a + 1], NULL, 10);
    else break;
    a += 2;
  }
  uint8_t key[32];
  if (argc - a < 3 || strlen(argv[a]) != 64 || unhex(argv[a], 32, key) != 0 || (account_file && max_uploads < 1)) {
    fprintf(stderr, "usage: check [--account FILE --max-uploads N] OPERATOR_KEY_HEX DIR TYPE:HEX[:NOTE] ...\n");
    return 1;
  }
  const char *dir = argv[a + 1];
  int n_items = argc - a - 2;
  if (n_items > MAX_ITEMS) {
    fprintf(stderr, "check: at most %d items per request\n", MAX_ITEMS);
    return 1;
  }

  size_t statement_len, signature_len, table_len, history_len = 0;
  uint8_t *statement = slurp(dir, "statement", &statement_len);
  uint8_t *signature = slurp(dir, "signature", &signature_len);
  uint8_t *table_bytes = slurp(dir, "table", &table_len);
  uint8_t *saved_history = slurp(dir, "history", &history_len);
  if (!statement || !signature || !table_bytes) {
    fprintf(stderr, "check: %s needs statement, signature and table\n", dir);
    return 1;
  }

  /* Only the signed statement is trusted; then the history refuses a
     version older than, or different from, one verified before. A refused
     table is never used: keep the one held (here: send nothing), tell
     someone, try again at the next refresh (bindings/ERRORS.md). */
  struct BmHistory *history = NULL;
  if (bm_history_new(key, 32, saved_history, history_len, &history) != BM_STATUS_OK)
    return fail("the saved history");
  struct BmManifest *manifest = NULL;
  struct BmAccepted *accepted = NULL;
  enum BmStatus s = bm_manifest_verify(statement, statement_len, signature, signature_len, key, 32, &manifest);
  if (s == BM_STATUS_OK) s = bm_history_check(history, manifest, &accepted);
  if (s != BM_STATUS_OK) {
    char why[512];
    bm_last_error(why, sizeof why);
    fprintf(stderr, "check: refused a table (status %d): %s\n", (int)s, why);
    return 3;
  }
  struct BmTable *table = NULL;
  if (bm_table_open(table_bytes, table_len, manifest, &table) != BM_STATUS_OK) {
    bm_accepted_free(accepted);
    return fail("the table"); /* not the manifest's table: download it again */
  }
  if (bm_history_record(history, accepted) != BM_STATUS_OK) return fail("recording the version");
  uint8_t record[65536];
  size_t record_len = bm_history_encode(history, record, sizeof record);
  if (record_len > sizeof record || save(dir, "history", record, record_len) != 0) {
    fprintf(stderr, "check: cannot save %s/history\n", dir);
    return 1;
  }

  struct item items[MAX_ITEMS];
  for (int i = 0; i < n_items; i++) {
    if (parse_item(argv[a + 2 + i], &items[i]) != 0) {
      fprintf(stderr, "check: item %d: expected TYPE:HEX[:NOTE]\n", i + 1);
      return 1;
    }
  }
  size_t voucher_len = bm_table_voucher_len(table);
  uint8_t *vouchers = malloc((size_t)n_items * voucher_len + 1);
  uint8_t table_id[32], submission_id[16];
  bm_table_id(table, table_id);

  if (!account_file) {
    /* Version 1: one voucher per item, one submission id for the batch. */
    for (int i = 0; i < n_items; i++) {
      s = bm_table_voucher(table, items[i].type, items[i].value, items[i].value_len,
                           (const uint8_t *)items[i].note, strlen(items[i].note),
                           vouchers + (size_t)i * voucher_len, voucher_len);
      if (s == BM_STATUS_MODE) return fail("this table is in threshold mode: give --account");
      if (s != BM_STATUS_OK) return fail("an item");
    }
    bm_submission_id(submission_id);
    print_hex("table_id", table_id, 32);
    print_hex("submission_id", submission_id, 16);
  } else {
    /* Threshold mode: uploads under the account. An upload's 16-byte id
       names it, so a retry counts once: an app uses its own id for the
       upload (a message id); here, the item's place and value. */
    if (bm_manifest_threshold(manifest) == 0) {
      fprintf(stderr, "check: this table is in version 1: leave out --account\n");
      return 1;
    }
    struct BmAccount *account = load_account(account_file, manifest, max_uploads);
    if (!account) return fail(account_file);
    uint8_t ids[16 * MAX_ITEMS], types[MAX_ITEMS];
    const uint8_t *values[MAX_ITEMS], *ads[MAX_ITEMS];
    size_t value_lens[MAX_ITEMS], ad_lens[MAX_ITEMS];
    for (int i = 0; i < n_items; i++) {
      memset(ids + 16 * i, 0, 16);
      ids[16 * i] = (uint8_t)i;
      memcpy(ids + 16 * i + 1, items[i].value, items[i].value_len < 15 ? items[i].value_len : 15);
      types[i] = items[i].type;
      values[i] = items[i].value;
      value_lens[i] = items[i].value_len;
      ads[i] = (const uint8_t *)items[i].note;
      ad_lens[i] = strlen(items[i].note);
    }
    s = bm_account_submission(table, account, (size_t)n_items, ids, types, values, value_lens, ads, ad_lens,
                              vouchers, (size_t)n_items * voucher_len, submission_id, NULL);
    if (s != BM_STATUS_OK) return fail("the uploads");
    uint8_t account_id[64];
    size_t id_len = bm_account_id(account, account_id, sizeof account_id);
    bm_account_free(account); /* zeroized */
    print_hex("table_id", table_id, 32);
    print_hex("submission_id", submission_id, 16);
    print_hex("account_id", account_id, id_len);
  }
  for (int i = 0; i < n_items; i++) print_hex("voucher", vouchers + (size_t)i * voucher_len, voucher_len);
  fprintf(stderr, "check: table version %llu verified; %d vouchers to send\n",
          (unsigned long long)bm_manifest_version(manifest), n_items);
  /* The app sends them (retrying the same request until acknowledged). */

  free(vouchers);
  bm_table_free(table);
  bm_manifest_free(manifest);
  bm_history_free(history);
  free(statement), free(signature), free(table_bytes), free(saved_history);
  return 0;
}
