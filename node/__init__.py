"""The node agent: turns what the master says into running services (SlapOS's slapformat + slapgrid).

Layout (one concern per module)::

    config.py        NodeConfig, read from the [slapos] and [slapformat] sections
    errors.py        the exception tree
    desired.py       the master's compute_node_state parsed into its slap.wire contract (pure)
    plan.py          what to do with each software release and partition (pure)
    runner.py        subprocesses with a deadline, a clean environment and a user
    users.py         unix users and groups (root mode) or the current user (single-user mode)
    network.py       the partitions' addresses on the configured interface
    format.py        `slapos node format`
    toolchain.py     the virtual environment that runs buildout, recipes and promises
    software.py      build and remove software releases (`slapos node software`)
    instance.py      deploy one partition (`slapos node instance`)
    supervisor.py    the node's supervisord: configuration, programs, XML-RPC
    watchdog.py      supervisord event listener: a watched service exited -> bang
    promises.py      run a partition's promises with deadlines, keep their results
    report.py        destroy what is requested destroyed (`slapos node report`)
    passes.py        one software / instance / report pass over the whole computer
    daemon.py        `slapos node run`: converge, wait for a change, again
    cli/             one file per command

On disk (defaults): ``software_root/<md5(url)>`` per software release (``.completed`` written
last), ``software_root/.cache`` (eggs and downloads shared by every build),
``software_root/.toolchain`` (buildout and the recipes), ``instance_root/slappartN`` per partition
(node files under ``.slapgrid/``, the processed timestamp in ``.timestamp``), and the node's
supervisord under ``instance_root/etc`` with its socket ``instance_root/sv.sock``.
"""
