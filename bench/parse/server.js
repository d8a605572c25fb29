'use strict';
// The real Parse Server, run by `make bench-compare` beside MindHarbor on the same PostgreSQL.
//
// A `cluster` primary forks WORKERS workers that share one port, as MindHarbor runs several
// uvicorn workers: each worker is express + ParseServer mounted at /parse, plus a LiveQuery
// server on the same HTTP server (ws://HOST:PORT/parse). With REDIS_URL set, saves publish to
// Redis and every worker's LiveQuery server subscribes to it, so an event raised by a save on
// one worker reaches a subscriber connected to another (required when WORKERS > 1).
//
// Environment: PORT, DATABASE_URI (postgres://...; add ?max=N to size the pg pool of each
// worker, pg's default is 10), APP_ID, MASTER_KEY, SERVER_URL (default
// http://127.0.0.1:PORT/parse), REDIS_URL (optional), WORKERS (default 1), HOST (default
// 127.0.0.1).
//
// The primary restarts nothing: when a worker dies it stops the others and exits non-zero, so a
// crash shows up as a failed run instead of a silently smaller server.

const cluster = require('node:cluster');
const http = require('node:http');

function fail(message) {
  console.error(`parse-server: ${message}`);
  process.exit(2);
}

function readConfig() {
  const env = process.env;
  const port = Number.parseInt(env.PORT || '', 10);
  if (!Number.isInteger(port) || port <= 0) fail('PORT must be a positive integer');
  const workers = Number.parseInt(env.WORKERS || '1', 10);
  if (!Number.isInteger(workers) || workers < 1) fail('WORKERS must be a positive integer');
  for (const name of ['DATABASE_URI', 'APP_ID', 'MASTER_KEY']) {
    if (!env[name]) fail(`${name} is required`);
  }
  if (!/^postgres(ql)?:\/\//.test(env.DATABASE_URI)) fail('DATABASE_URI must be postgres://...');
  const redisURL = env.REDIS_URL || undefined;
  // Without Redis each worker's LiveQuery server only hears the saves of its own worker.
  if (workers > 1 && !redisURL) fail('REDIS_URL is required when WORKERS > 1');
  return {
    port,
    workers,
    host: env.HOST || '127.0.0.1',
    databaseURI: env.DATABASE_URI,
    appId: env.APP_ID,
    masterKey: env.MASTER_KEY,
    serverURL: env.SERVER_URL || `http://127.0.0.1:${port}/parse`,
    redisURL,
  };
}

function parseOptions(config) {
  return {
    databaseURI: config.databaseURI,
    appId: config.appId,
    masterKey: config.masterKey,
    serverURL: config.serverURL,
    // Parse 9 defaults, spelled out because the benchmark depends on them.
    allowClientClassCreation: false,
    enforcePrivateUsers: true,
    sessionLength: 31536000, // one year
    expireInactiveSessions: true,
    maxLimit: 1000,
    enableAnonymousUsers: false,
    // Parse 9 accepts the master key only from these addresses (its default), checked against
    // req.ip. The benchmark client is on this machine and the server listens on 127.0.0.1.
    masterKeyIps: ['127.0.0.1', '::1'],
    // No rate limit (the default is none); stated so a future default cannot slip in.
    rateLimit: [],
    // No per-request logging and no log files in the work tree: only errors, to the console
    // (the harness's log file). Parse counts every error answer (a 404, a refused login) as one:
    // each such response writes a line with its stack trace.
    logLevel: 'error',
    logsFolder: null,
    // Several servers (the workers) share one database and each caches the schema in memory.
    // Parse re-reads it when a class is missing altogether, but a change to a class that a worker
    // already knows (its CLPs, fields or indexes, made through another worker) would stay unseen.
    // With schema hooks every change is announced to the others by PostgreSQL NOTIFY: what Parse
    // documents for several instances on one database; it costs one idle LISTEN connection per
    // worker and nothing per request.
    databaseOptions: { enableSchemaHooks: true },
    liveQuery: config.redisURL
      ? { classNames: ['Message'], redisURL: config.redisURL }
      : { classNames: ['Message'] },
  };
}

async function runWorker() {
  const config = readConfig();
  // Parse builds a default file logger (./logs) when it is first required, before it reads the
  // options; this environment variable is the only way to stop it writing into the work tree.
  process.env.PARSE_SERVER_LOGS_FOLDER = 'null';
  const express = require('express');
  const { ParseServer } = require('parse-server');

  const options = parseOptions(config);
  const server = new ParseServer(options);
  await server.start();

  const app = express();
  // Readiness that the harness can count: until this worker's LiveQuery server is connected its
  // /health says 503, and after it names the worker, so a poller that opens a new connection
  // each time (the primary deals connections round-robin) can tell when all WORKERS answer.
  // Only /parse/health passes through here; no other request pays for it.
  let ready = false;
  app.get('/parse/health', (req, res, next) => {
    if (!ready) {
      res.status(503).json({ status: 'starting' });
      return;
    }
    res.set('X-Bench-Worker', String(process.pid));
    res.set('X-Bench-Workers', String(config.workers));
    next();
  });
  app.use('/parse', server.app);
  const httpServer = http.createServer(app);
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const liveQueryConfig = config.redisURL ? { redisURL: config.redisURL } : {};
  await ParseServer.createLiveQueryServer(httpServer, liveQueryConfig, options);
  ready = true;

  console.log('parse-server ready');
  if (process.send) process.send({ ready: true });
}

function runPrimary() {
  const config = readConfig();
  let stopping = false;

  const stopAll = (code) => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) {
      if (worker && !worker.isDead()) worker.process.kill('SIGTERM');
    }
    process.exit(code);
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(
      `parse-server: worker ${worker.process.pid} died (code ${code}, signal ${signal}); stopping`,
    );
    stopAll(1);
  });
  process.on('SIGTERM', () => stopAll(0));
  process.on('SIGINT', () => stopAll(0));

  // One worker at a time: on a fresh database each worker's start creates Parse's system tables
  // and SQL functions, and two doing that at once can fail on PostgreSQL's catalog (duplicate
  // pg_type, "tuple concurrently updated"). Only the first start does real work; the rest are
  // quick.
  let started = 0;
  const forkNext = () => {
    const worker = cluster.fork();
    worker.on('message', (message) => {
      if (message && message.ready) {
        started += 1;
        if (started < config.workers) forkNext();
      }
    });
  };
  forkNext();
}

if (cluster.isPrimary) {
  runPrimary();
} else {
  runWorker().catch((error) => {
    console.error('parse-server: worker failed to start:', error);
    process.exit(1);
  });
}
