"""Run one PPO + RND/SND job, or a grid of them with -m.

python sweep.py -m model=A,B,C,D critic_init=0.1,sqrt2
python sweep.py -m experiment=glob(ppo_rnd_*) seed=range(1,4)
python sweep.py -m env=maze motivation=none,rnd budget=demo debug=small dry_run=true
"""

import sys

from rlsweep.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
