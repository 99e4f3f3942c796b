/*
 * server/main.c: the `analyticsd` executable: parses the subcommand, validates the
 * configuration for that role (CONFIG.md §1, §3) and hands over to the master (serve), the
 * migration runner (migrate) or the seed (seed). Runs in the process the operator started.
 *
 * Exit status: 0 success, 1 configuration error or failure, 2 usage error.
 */
#include "common/config.h"
#include "common/log.h"
#include "common/migrate.h"
#include "common/pgsession.h"
#include "common/proctitle.h"
#include "seed/seed.h"
#include "server/master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_main[] =
    "Usage: analyticsd <command> [options]\n"
    "\n"
    "Analytics report service: report reads over precomputed snapshots, recompute runs,\n"
    "audit trail. Configuration comes from the environment (see README.md).\n"
    "\n"
    "Commands:\n"
    "  serve      run the HTTP API and the recompute workers (pre-forked master)\n"
    "  migrate    apply pending database migrations and exit\n"
    "  seed       load the deterministic demo data set and exit\n"
    "  version    print the version and exit\n"
    "\n"
    "Run 'analyticsd <command> --help' for the options of a command.\n";

static const char usage_serve[] =
    "Usage: analyticsd serve [--config FILE]\n"
    "\n"
    "Runs the master process, which pre-forks HTTP_WORKERS HTTP workers and RECOMPUTE_WORKERS\n"
    "recompute workers. Reads every variable of README.md's configuration table except\n"
    "SEED_FORCE_RESET; DATABASE_URL and REDIS_URL are required.\n"
    "\n"
    "  --config FILE  environment file (KEY=VALUE lines) read at start and again on SIGHUP;\n"
    "                 its values override the process environment\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n";

static const char usage_migrate[] =
    "Usage: analyticsd migrate\n"
    "\n"
    "Applies the migrations compiled into this program to DATABASE_URL and exits.\n";

static const char usage_seed[] =
    "Usage: analyticsd seed\n"
    "\n"
    "Loads 25,000 deterministic demo events into DATABASE_URL and builds their snapshots,\n"
    "unless events already exist, then the SMS demo data (20,000 messages) unless SMS data\n"
    "already exists. SEED_FORCE_RESET=true truncates the demo and SMS tables first.\n";

static const char usage_version[] = "Usage: analyticsd version\n\nPrints the version.\n";

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

static int load_config(config *cfg, config_role role, config_source src)
{
    if (config_load(cfg, role, src, stderr) != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

/* migrate and seed: validate, connect, run, exit (CONFIG.md §5.4). */
static int run_db_command(config_role role)
{
    config cfg;
    const char *role_name = role == CONFIG_ROLE_MIGRATE ? "migrate" : "seed";
    log_set_role(role_name);
    if (load_config(&cfg, role, config_source_environ()) != 0)
        return 1;
    int rc = 1;
    PGconn *conn = pgsession_connect(cfg.database_url, role_name);
    if (conn != NULL) {
        if (role == CONFIG_ROLE_MIGRATE)
            rc = migrate_run(conn) == 0 ? 0 : 1;
        else /* the seed role does not read SMS_HOURLY_RETENTION_DAYS: its default (90) */
            rc = seed_run(conn, cfg.seed_force_reset, cfg.sms_hourly_retention_days) ? 1 : 0;
        PQfinish(conn);
    }
    config_free(&cfg);
    return rc;
}

static int run_serve(int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_serve, stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "analyticsd serve: unknown argument '%s'\n\n%s", argv[i], usage_serve);
            return 2;
        }
    }
    log_set_role("master");
    config_env_file *file = NULL;
    config_source src = config_source_environ();
    if (config_path != NULL) {
        const char *error = NULL;
        if (config_env_file_load(config_path, &file, &error) != 0) {
            fprintf(stderr, "configuration error: --config %s: %s\n", config_path, error);
            return 1;
        }
        src = config_env_file_source(file);
    }
    config cfg;
    int rc = load_config(&cfg, CONFIG_ROLE_SERVER, src);
    config_env_file_free(file);
    if (rc != 0)
        return 1;
    log_set_format((log_format)cfg.log_format); /* before any fork: every child inherits it */
    rc = master_run(&cfg, config_path);
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    proctitle_init(argc, argv);
    /* Under systemd, stdout is the journal: let it timestamp lines and read our priorities. */
    if (getenv("JOURNAL_STREAM") != NULL)
        log_set_journal_prefix(1);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return run_serve(argc, argv);

    const char *usage = strcmp(cmd, "migrate") == 0   ? usage_migrate
                        : strcmp(cmd, "seed") == 0    ? usage_seed
                        : strcmp(cmd, "version") == 0 ? usage_version
                                                      : NULL;
    if (usage == NULL) {
        fprintf(stderr, "analyticsd: unknown command '%s'\n\n%s", cmd, usage_main);
        return 2;
    }
    if (argc > 2) {
        if (is_help(argv[2])) {
            fputs(usage, stdout);
            return 0;
        }
        fprintf(stderr, "analyticsd %s: unknown argument '%s'\n\n%s", cmd, argv[2], usage);
        return 2;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("analyticsd %s\n", ANALYTICSD_VERSION);
        return 0;
    }
    return run_db_command(strcmp(cmd, "migrate") == 0 ? CONFIG_ROLE_MIGRATE : CONFIG_ROLE_SEED);
}
