// A real Redis for the queue tests: Debian's `redis-server` (installed by .ci/run, named in the
// README's setup) started on a free loopback port with its own temporary directory and append-only
// persistence (fsync on every write), stopped and restarted on the same port and data. Never
// downloads anything and never touches a Redis it did not start.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when `redis-server` is on PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends one command and returns the first line of the reply, or null when there is none. */
function command(port: number, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setTimeout(5000);
    socket.on('connect', () =>
      socket.write(
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
      ),
    );
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.slice(0, reply.indexOf('\r\n')));
      }
    });
    socket.on('error', () => resolve(null));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(null);
    });
  });
}

/** True once Redis answers PING with +PONG (not -LOADING). */
async function ping(port: number): Promise<boolean> {
  return (await command(port, ['PING'])) === '+PONG';
}

/** A redis-server child process on 127.0.0.1. */
export class RedisServer {
  private process: ChildProcess | null = null;

  private constructor(
    /** Its TCP port. */
    readonly port: number,
    /** Its data directory (append-only file). */
    readonly dir: string,
  ) {}

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server on a free port with a new temporary directory.
   * @throws when redis-server is missing or does not answer within 30 s
   */
  static async start(): Promise<RedisServer> {
    if (!hasRedisServer())
      throw new Error('redis-server is not installed: apt-get install redis-server (see README)');
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'ctm-redis-')));
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
      ],
      { stdio: 'ignore' },
    );
    this.process = child;
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis-server on port ${this.port} did not answer within 30 s`);
  }

  /** Deletes every key (the queue's data lost, as by a restart without persistence). */
  async flushAll(): Promise<void> {
    const reply = await command(this.port, ['FLUSHALL']);
    if (reply !== '+OK') throw new Error(`FLUSHALL answered ${reply}`);
  }

  /** Stops the server (SIGTERM by default; SIGKILL loses nothing with fsync always). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.process = null;
  }

  /** Stops the server with `signal` and starts it again on the same port and data. */
  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.launch();
  }

  /** Stops the server and deletes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
