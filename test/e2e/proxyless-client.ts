// Starts proxyless-client-main.js as a child process and calls it: one RPC per whoami(), answered in order.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./proxyless-client-main.js', import.meta.url));

export interface ProxylessClient {
  /** One unary RPC; resolves with the server's answer, rejects with the gRPC error. */
  whoami(): Promise<string>;
  close(): Promise<void>;
}

export function startProxylessClient(options: { bootstrap: unknown; target: string; methodPath: string }): ProxylessClient {
  const child: ChildProcess = spawn(process.execPath, [MAIN, options.target, options.methodPath], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(options.bootstrap) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting: Array<{ resolve: (s: string) => void; reject: (e: Error) => void }> = [];
  let exited: Error | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const reply = JSON.parse(line) as { answer?: string; error?: string };
    const next = waiting.shift();
    if (!next) return;
    if (reply.error !== undefined) next.reject(new Error(reply.error));
    else next.resolve(reply.answer ?? '');
  });
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = new Error(`proxyless client exited (${signal ?? code})`);
      for (const w of waiting.splice(0)) w.reject(exited);
      resolve();
    }),
  );
  return {
    whoami: () =>
      exited
        ? Promise.reject(exited)
        : new Promise((resolve, reject) => {
            waiting.push({ resolve, reject });
            child.stdin!.write('whoami\n');
          }),
    close: async () => {
      if (!exited) child.kill('SIGKILL');
      await exitedPromise;
    },
  };
}
