/*
 * test_outbox.c — unit tests for the on-disk outbox (outbox.c): ids
 * (shape, order, uniqueness), atomic create / read / update / remove, file
 * modes, listing in age order ignoring foreign files, claims that exclude
 * another process (a forked child) and that pass from version to version
 * across an update without a gap, a claim on a removed entry, temporary
 * files of dead writers cleaned up, damaged entries reported, side files.
 * Depends on: cmocka, outbox.h.
 */
#include "outbox.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/irp-test-outbox-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = ut_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static ob_outbox *open_box(void)
{
    char err[256];
    ob_outbox *o = ob_open(dir, err, sizeof err);
    if (!o)
        fail_msg("%s", err);
    return o;
}

/* In a child: 1 when it could claim id, 0 when busy, 2 when gone. */
static int child_claim(const char *id)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char err[256];
        ob_outbox *o = ob_open(dir, err, sizeof err);
        ob_lock l = OB_LOCK_NONE;
        json_t *doc = NULL;
        int gone = 0;
        int rc = o ? ob_claim(o, id, &l, &doc, &gone, err, sizeof err) : -1;
        _exit(rc == 1 ? 1 : rc == 0 && gone ? 2 : rc == 0 ? 0 : 3);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void test_ids(void **state)
{
    (void)state;
    char *a = ob_new_id(), *b = ob_new_id();
    assert_true(ob_valid_id(a));
    assert_true(ob_valid_id(b));
    assert_string_not_equal(a, b);
    assert_true(strcmp(a, b) < 0); /* later ids sort later */
    assert_int_equal(strlen(a), strlen("msg_1764062024123_7f3a9c01b2d4"));
    free(a);
    free(b);
    assert_false(ob_valid_id("../etc/passwd"));
    assert_false(ob_valid_id("msg_a/b"));
    assert_false(ob_valid_id("x_1"));
    assert_false(ob_valid_id(NULL));
}

static void test_create_claim_update_remove(void **state)
{
    (void)state;
    char err[256];
    ob_outbox *o = open_box();
    char *id = ob_new_id();
    json_t *doc = json_pack("{s:s, s:i}", "id", id, "attempts", 0);
    ob_lock held = OB_LOCK_NONE;
    assert_int_equal(ob_create(o, id, doc, &held, err, sizeof err), 0);
    assert_true(held.fd >= 0);
    char *path = ut_xasprintf("%s/outbox/%s.json", dir, id);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *odir = ut_xasprintf("%s/outbox", dir);
    assert_int_equal(stat(odir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* held from creation: another process cannot take it */
    assert_int_equal(child_claim(id), 0);
    /* an update keeps it held: the lock moves to the new version */
    json_object_set_new(doc, "attempts", json_integer(1));
    assert_int_equal(ob_update(o, id, &held, doc, err, sizeof err), 0);
    assert_int_equal(child_claim(id), 0);
    json_t *seen = ob_read(o, id, err, sizeof err);
    assert_int_equal(json_integer_value(json_object_get(seen, "attempts")), 1);
    json_decref(seen);
    /* released: the child can claim it */
    ob_release(&held);
    assert_int_equal(held.fd, -1);
    assert_int_equal(child_claim(id), 1);

    /* claim it here, with its content */
    json_t *got = NULL;
    int gone = 0;
    assert_int_equal(ob_claim(o, id, &held, &got, &gone, err, sizeof err), 1);
    assert_int_equal(json_integer_value(json_object_get(got, "attempts")), 1);
    json_decref(got);
    assert_int_equal(ob_remove(o, id, &held, err, sizeof err), 0);
    assert_int_equal(held.fd, -1);
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_equal(child_claim(id), 2);
    assert_int_equal(ob_claim(o, id, &held, &got, &gone, err, sizeof err), 0);
    assert_true(gone);
    json_decref(doc);
    free(id);
    free(path);
    free(odir);
    ob_close(o);
}

static void test_list_order_and_foreign_files(void **state)
{
    (void)state;
    char err[256];
    ob_outbox *o = open_box();
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = ob_new_id();
        json_t *doc = json_pack("{s:s}", "id", ids[i]);
        assert_int_equal(ob_create(o, ids[i], doc, NULL, err, sizeof err), 0);
        json_decref(doc);
    }
    /* foreign and temporary files are not entries */
    char *junk = ut_xasprintf("%s/outbox/notes.txt", dir);
    FILE *f = fopen(junk, "w");
    fputs("x", f);
    fclose(f);
    size_t n = 0;
    char **list = ob_list(o, &n);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(list[i], ids[i]);
    ob_free_ids(list, n);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(junk);
    ob_close(o);
}

static void test_stale_tmp_and_damage(void **state)
{
    (void)state;
    char err[256];
    ob_outbox *o = open_box();
    ob_close(o);
    /* a temporary file of a writer that is gone (pid 2^22+1 is not running) */
    char *tmp = ut_xasprintf("%s/outbox/msg_1_aa.json.tmp.4194305.1", dir);
    FILE *f = fopen(tmp, "w");
    fputs("{\"half", f);
    fclose(f);
    /* a damaged entry */
    char *bad = ut_xasprintf("%s/outbox/msg_2_bb.json", dir);
    f = fopen(bad, "w");
    fputs("{\"not json", f);
    fclose(f);
    o = open_box();
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    json_t *doc = ob_read(o, "msg_2_bb", err, sizeof err);
    assert_null(doc);
    assert_non_null(strstr(err, "msg_2_bb.json is not a JSON object"));
    ob_lock l = OB_LOCK_NONE;
    int gone = 0;
    assert_int_equal(ob_claim(o, "msg_2_bb", &l, &doc, &gone, err, sizeof err), -1);
    assert_int_equal(l.fd, -1);
    free(tmp);
    free(bad);
    ob_close(o);
}

static void test_side_files(void **state)
{
    (void)state;
    char err[256];
    ob_outbox *o = open_box();
    int missing = 0;
    assert_null(ob_get(o, "incidents", "r1.json", &missing, err, sizeof err));
    assert_true(missing);
    json_t *doc = json_pack("{s:s}", "run", "r1");
    assert_int_equal(ob_put(o, "incidents", "r1.json", doc, err, sizeof err), 0);
    json_decref(doc);
    doc = ob_get(o, "incidents", "r1.json", &missing, err, sizeof err);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "run")), "r1");
    json_decref(doc);
    assert_int_equal(ob_delete(o, "incidents", "r1.json"), 0);
    assert_null(ob_get(o, "incidents", "r1.json", &missing, err, sizeof err));
    /* side files are not entries */
    size_t n = 0;
    char **list = ob_list(o, &n);
    ob_free_ids(list, n);
    assert_int_equal(n, 0);
    ob_close(o);
}

static void test_unwritable_state_dir(void **state)
{
    (void)state;
    char err[256];
    ob_outbox *o = ob_open("/proc/irp-cannot-exist", err, sizeof err);
    assert_null(o);
    assert_non_null(strstr(err, "cannot create the outbox"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_create_claim_update_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order_and_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_and_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_side_files, setup, teardown),
        cmocka_unit_test(test_unwritable_state_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
