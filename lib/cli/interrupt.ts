/** Ctrl-C for long commands: the first aborts the signal (the run checkpoints and stops), a second exits at once. */
export function interruptOnSigint(): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130); // a second Ctrl-C does not wait
    process.stderr.write('\ncmsae: interrupted, writing a checkpoint (Ctrl-C again to quit at once)\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: ac.signal, release: () => process.off('SIGINT', onSigint) };
}
