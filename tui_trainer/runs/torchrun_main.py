"""``python -m tui_trainer.runs.torchrun_main ARGS``: torchrun (``torch.distributed.run``) with the
same arguments, minus the Python traceback of its ``ChildFailedError`` when a rank fails.

Each rank has already printed why it stopped (``tui-trainer: error: ...``, exit 2 for what the
user can fix); torchrun's ``@record`` main then added some 40 lines of its own traceback and
failure table, which buried that line. This prints one line naming the first failed rank.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        how = f"was killed by signal {-failure.exitcode}" if failure.exitcode < 0 else f"exited with code {failure.exitcode}"
        print(f"torchrun: rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) {how}; its own lines above say why",
              file=sys.stderr, flush=True)
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
