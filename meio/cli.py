"""The ``meio`` command line: generate, inspect and solve instances.

Every user error (a malformed instance, a missing file, a bad option) ends with a short
explanation and exit code 2, never a traceback; every exit code means one thing
(:mod:`meio.console`). Destinations are checked before any work starts, results are written
atomically, and a folder meio did not write is never emptied (:mod:`meio.files`). Ctrl-C stops
a solve within moments, writes what was found and exits with code 130.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click
import pandas as pd

from meio import __version__
from meio._optional import require
from meio.console import (
    CHECK_FAILED,
    INFEASIBLE,
    INTERNAL,
    INTERRUPTED,
    LIMIT,
    STATUS_EXIT,
    Exit,
    MeioGroup,
    UserError,
    configure_logging,
    exit_codes_help,
    tidy,
)
from meio.files import (
    OutputError,
    atomic_file,
    check_output_dir,
    check_output_file,
    write_tables,
)
from meio.instances import (
    GeneratorConfig,
    Instance,
    InstanceError,
    bundled_names,
    generate,
    load,
    preset,
    preset_names,
    save,
    schema_markdown,
)

log = logging.getLogger("meio.cli")  # progress and what was written, on stderr (-q hides it)
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
FORCE_HELP = ("Write into an existing folder meio did not write, beside its files (meio never "
              "deletes or replaces a file it did not write).")


def _user_errors(fn):
    """Turn the errors a user can cause into a one-paragraph message and exit code 2; any
    failure after Ctrl-C is the interrupt's doing and ends as one (exit code 130)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from meio.models import interrupt

        try:
            return fn(*args, **kwargs)
        except Exit:
            raise
        except Exception as exc:
            if interrupt.requested():
                raise KeyboardInterrupt from None
            if isinstance(exc, InstanceError):
                raise UserError(str(exc)) from None
            if isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError,
                                PermissionError, ValueError, KeyError)):
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                raise UserError(str(msg)) from None
            raise

    return wrapper


def _load(source: str, variant: str | None = None) -> Instance:
    return load(source, variant=variant)


def _inputs(instance: str) -> list[Path]:
    """The instance's path when it is one (a bundled name is not the user's file)."""
    return [Path(instance)] if Path(instance).exists() else []


def _check_out(out: Path | None, force: bool, instance: str,
               own: tuple[Path, ...] = ()) -> Path | None:
    """``--out`` may be written (``own``: files meio keeps there, e.g. a checkpoint)."""
    return None if out is None else check_output_dir(out, force, inputs=_inputs(instance),
                                                     own=own)


def _check_plot(plot: Path | None) -> Path | None:
    """A plot path with a known image format (no suffix: ``.png`` is added)."""
    if plot is None:
        return None
    if not plot.suffix:
        plot = plot.with_suffix(".png")
    require("matplotlib", "--plot")  # before any solve, like the destination itself
    return check_output_file(plot, PLOT_SUFFIXES, "--plot")


def _check_checkpoint(path: Path | None, resume: bool, force: bool) -> None:
    """Never overwrite a file that is not a checkpoint, nor a checkpoint without --resume."""
    if path is None or not path.exists():
        if path is not None:
            check_output_file(path, None, "--checkpoint")
        return
    from meio.decomposition.checkpoint import CheckpointError, read_checkpoint

    try:
        state = read_checkpoint(path)
    except CheckpointError as exc:
        why = str(exc).removeprefix(f"{path}: ")
        raise OutputError(f"--checkpoint: {path} exists and is not a usable meio checkpoint "
                          f"({why}): meio will not overwrite it; choose another file") from None
    if not resume and not force:
        raise OutputError(f"--checkpoint: {path} holds a checkpoint of iteration "
                          f"{state.get('iteration')}: pass --resume to continue it, --force to "
                          "start over and replace it, or choose another file")


def _exit_for(status: str, what: str) -> None:
    """Leave with the exit code of a solve's status that found no plan (module docs)."""
    code = STATUS_EXIT.get(status, INTERNAL)
    raise Exit(code, what if code != INTERNAL else f"{what}: solver status {status}")


@click.group(cls=MeioGroup, epilog=exit_codes_help(),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="meio")
@click.option("--quiet", "-q", is_flag=True,
              help="Results only: no progress, no solver log (warnings still show).")
@click.option("--verbose", "-v", is_flag=True, help="Debug messages too.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also append every log message (all levels, timed, with the solver's log) "
                   "to this file.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool, log_file: Path | None,
         debug: bool) -> None:
    """meio: multi-echelon inventory optimization with Lagrangian decomposition.

    An INSTANCE is a bundled name (tiny, small, medium), a directory of CSV tables, or a .zip
    bundle of Parquet tables. `meio schema` documents the tables column by column.

    \b
    Examples:
      meio info small
      meio solve small                      # LP, prints status, objective, duals
      meio solve tiny --variant integer --out results/tiny
      meio generate --preset small --seed 7 --out my_instance
      meio decompose small --checkpoint run.ckpt   # add --resume to continue
      meio compare small --plot bounds.png
      meio validate lot-sizing --n 10        # bounds checked on random instances
      meio evaluate small --out eval_small   # plans out of sample: report.html

    Results go to standard output, progress and the solver's log to standard error. A results
    folder (--out) is marked as meio's by a manifest (.meio-manifest.json); meio refuses to
    write into a non-empty folder it did not write (--force adds its files beside yours) and
    never deletes a file it did not write. Ctrl-C stops within moments, writes what was found
    (the incumbent, the rows so far, a checkpoint) and exits with 130.
    """
    from meio.models import interrupt

    ctx.meta["meio.debug"] = debug
    try:
        configure_logging(quiet, verbose, log_file)
    except OSError as err:
        raise click.BadParameter(f"cannot append to {log_file}: {err.strerror}",
                                 param_hint="--log-file") from None
    ctx.with_resource(interrupt.watching())


@main.command()
@click.argument("instance")
@_user_errors
def info(instance: str) -> None:
    """Summarize INSTANCE: sizes, totals and the rows of each table."""
    inst = _load(instance)
    click.echo(inst.summary().to_string(index=False))
    click.echo()
    counts = pd.DataFrame({"table": list(inst.tables),
                           "rows": [len(df) for df in inst.tables.values()]})
    click.echo(counts.to_string(index=False))


@main.command()
def schema() -> None:
    """Print the instance tables, column by column (Markdown)."""
    click.echo(schema_markdown())


@main.command("list")
def list_instances() -> None:
    """List the bundled instances."""
    for name in bundled_names():
        click.echo(name)


@main.command("generate")
@click.option("--preset", "preset_name", type=click.Choice(preset_names()), default="small",
              show_default=True, help="Start from a preset configuration.")
@click.option("--seed", type=int, help="Random seed (same seed and options: same instance).")
@click.option("--skus", type=click.IntRange(min=1), help="Number of SKUs.")
@click.option("--dcs", type=click.IntRange(min=1), help="Number of distribution centers.")
@click.option("--fcs", type=click.IntRange(min=1), help="Number of fulfillment centers.")
@click.option("--regions", type=click.IntRange(min=1), help="Number of customer regions.")
@click.option("--scenarios", type=click.IntRange(min=1), help="Number of scenarios.")
@click.option("--vendors", type=click.IntRange(min=1), help="Number of vendors.")
@click.option("--binding-share", type=click.FloatRange(0, 1),
              help="Share of capacities set to bind.")
@click.option("--tightness", type=click.FloatRange(0, 1, min_open=True),
              help="Binding capacities = tightness x load.")
@click.option("--budget-factor", type=click.FloatRange(min=0, min_open=True),
              help="Add a budget of this factor x the unconstrained spend.")
@click.option("--calibrate", type=click.Choice(["lp", "proxy"]),
              help="Capacity loads from the uncapacitated LP (exact) or a fast proxy.")
@click.option("--name", help="Instance name (default: the output's name).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output: a directory (CSV tables) or a file ending in .zip (Parquet bundle).")
@click.option("--force", is_flag=True, help=FORCE_HELP + " A .zip that is not a meio bundle "
              "is replaced only with --force.")
@_user_errors
def generate_cmd(preset_name, seed, skus, dcs, fcs, regions, scenarios, vendors, binding_share,
                 tightness, budget_factor, calibrate, name, out, force) -> None:
    """Generate a realistic instance from a preset, with optional overrides.

    Every instance it writes is feasible (checked by an LP solve after rounding); a parameter
    combination that cannot give one is refused with a message naming the parameter.
    """
    over = {"seed": seed, "n_skus": skus, "n_dcs": dcs, "n_fcs": fcs, "n_regions": regions,
            "n_scenarios": scenarios, "n_vendors": vendors, "binding_share": binding_share,
            "tightness": tightness, "budget_factor": budget_factor, "calibrate": calibrate}
    cfg: GeneratorConfig = preset(preset_name, **{k: v for k, v in over.items()
                                                  if v is not None})
    _check_bundle_destination(out, force)
    inst = generate(cfg, name=name or out.stem, progress=sys.stderr.isatty())
    save(inst, out, force=force)
    click.echo(f"wrote {out} ({inst.n_skus} SKUs, {len(inst.tables['nodes'])} nodes, "
               f"{len(inst.scenario_ids)} scenarios, seed {cfg.seed})")


def _check_bundle_destination(out: Path, force: bool) -> None:
    """An instance goes to a .zip bundle (replacing only a meio bundle) or a results-style
    folder (:func:`meio.files.check_output_dir`)."""
    if out.suffix.lower() != ".zip":
        check_output_dir(out, force, kind="instance")
        return
    check_output_file(out, (".zip",), "--out")
    if out.exists() and not force:
        import zipfile

        try:
            with zipfile.ZipFile(out) as zf:
                ours = "meio.json" in zf.namelist()
        except (zipfile.BadZipFile, OSError):
            ours = False
        if not ours:
            raise OutputError(f"--out: {out} exists and is not a meio instance bundle: meio "
                              "will not replace it (pass --force to replace it)")


@main.command()
@click.argument("instance")
@click.option("--variant", type=click.Choice(["continuous", "integer"]), default="continuous",
              show_default=True, help="LP, or integer units with stock-or-not fixed costs.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Time limit for HiGHS in seconds.")
@click.option("--mip-gap", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Relative MIP gap (integer variant).")
@click.option("--method", type=click.Choice(["choose", "simplex", "ipm"]), default="choose",
              show_default=True, help="HiGHS LP method.")
@click.option("--solver", default="highs", show_default=True,
              help="Any Pyomo solver name: highs, scip_direct, gurobi_direct, cplex_direct, "
                   "xpress_direct, glpk, cbc, ... (time limit, MIP gap and threads are passed "
                   "in each solver's own terms; HiGHS alone stops on Ctrl-C at once).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the result tables into this directory.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="Format of the written tables.")
@click.option("--all-rows", is_flag=True, help="Print every linking row, not only priced ones.")
@_user_errors
def solve(instance, variant, time_limit, mip_gap, method, solver, out, force, fmt,
          all_rows) -> None:
    """Solve INSTANCE exactly (monolithic model, HiGHS) and print status, objective and duals.

    The linking rows (storage, throughput, receiving, transfer capacity, network service,
    budget) are printed with their multiplier: the LP dual as an opportunity cost (>= 0 for a
    capacity; 0 when slack). HiGHS's log shows progress on standard error (-q hides it).
    Exit code 3 when the instance is infeasible, 4 when the time limit came before a feasible
    plan, 130 after Ctrl-C (the incumbent, if any, is printed and written).
    """
    from meio.models import InventoryModel, solve_monolithic

    if method != "choose" and solver != "highs":
        raise click.BadParameter("applies to HiGHS only (--solver highs)", param_hint="--method")
    _check_out(out, force, instance)
    inst = _load(instance, variant)
    family = InventoryModel(inst, variant)
    log.info(f"solving {inst.name} ({variant}): {inst.n_skus} SKUs, "
             f"{len(inst.scenario_ids)} scenarios ...")
    res = solve_monolithic(family, time_limit=time_limit, mip_gap=mip_gap, solver=solver,
                           options={} if method == "choose" else {"solver": method})
    if out is not None and res.has_solution:  # written first: printing may fail (a closed pipe)
        res.write(out, fmt, force=force)
        log.info(f"wrote results to {out}")
    click.echo(tidy(res.summary()))
    if not res.has_solution:
        hint = {"infeasible": "no plan meets every constraint: check that capacities, budget "
                "and service targets are compatible (e.g. loosen a target or a capacity)",
                "time_limit": "no feasible solution within the time limit: raise --time-limit",
                "interrupted": "interrupted before a feasible plan was found"}
        _exit_for(res.status, f"no solution: {hint.get(res.status, res.status)}")
    show = res.rows.drop(columns=["key"])
    if "multiplier" in show and not all_rows:
        priced = show[show["multiplier"].abs() > 1e-9]
        click.echo(f"\nlinking-row duals (opportunity costs): {len(priced)} of {len(show)} rows "
                   "priced; the others are slack (multiplier 0; --all-rows lists them)")
        show = priced
    elif "multiplier" not in show and not all_rows:  # no duals: the binding rows
        tight = show[show["slack"].abs() <= 1e-6 * show["rhs"].abs().clip(lower=1.0)]
        click.echo(f"\nbinding linking rows (no duals: a MIP, or a solver without them): "
                   f"{len(tight)} of {len(show)} "
                   "rows have no slack (--all-rows lists every row)")
        show = tight
    labels = [c for c in show.columns if show[c].notna().any()]
    click.echo(tidy(show[labels], digits=6))
    click.echo("\nservice within promise:")
    click.echo(tidy(res.tables["service"], digits=4))
    if res.status == "interrupted":
        raise Exit(INTERRUPTED, "interrupted: the best plan found so far is shown"
                   + (" and written" if out is not None else ""))


@main.command("compare")
@click.argument("instance")
@click.option("--variant", "variants", type=click.Choice(["continuous", "integer", "both"]),
              default="both", show_default=True, help="Which variants to compare.")
@click.option("--methods", default="bundle,volume,subgradient", show_default=True,
              help="Comma-separated dual methods: bundle, volume, subgradient, "
                   "subgradient-diminishing.")
@click.option("--max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Iteration limit per decomposition run.")
@click.option("--gap", "gap_tol", type=click.FloatRange(min=0), default=1e-4,
              show_default=True, help="Stop a run at this certified relative gap.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True,
              help="Time limit per run (each decomposition and each exact solve), seconds.")
@click.option("--plot", type=click.Path(path_type=Path),
              help="Write a plot of bound convergence to this file (.png, .pdf or .svg; "
                   "no suffix: .png).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the table, histories and multipliers (CSV) into this directory.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@_user_errors
def compare_cmd(instance, variants, methods, max_iter, gap_tol, time_limit, plot, out,
                force) -> None:
    """Bounds of INSTANCE side by side: LP relaxation, Lagrangian bound per method, best
    feasible value, exact optimum; certified gaps and times, per variant.

    The Lagrangian bound of every method must not exceed the exact optimum; the feasible values
    (recovered primal solutions) must not be below it; `gap` is (UB - LB) / |UB|. A solve
    without a value (infeasible, time limit) shows its status instead (exit code 3 when the
    exact solve proves the instance infeasible); after Ctrl-C the rows finished so far are
    printed and written (exit code 130).
    """
    from meio.decomposition import METHODS, compare, plot_convergence
    from meio.models import InventoryModel

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise click.BadParameter(f"unknown method(s) {unknown}; choose from "
                                 f"{', '.join(METHODS)}", param_hint="--methods")
    _check_out(out, force, instance)
    plot = _check_plot(plot)
    chosen = ("continuous", "integer") if variants == "both" else (variants,)
    inst = _load(instance, "integer" if "integer" in chosen else None)
    log.info(f"comparing on {inst.name}: {inst.n_skus} SKUs, variants {', '.join(chosen)}, "
             f"methods {', '.join(names)} ...")
    table, runs = compare(lambda v: InventoryModel(inst, v), chosen, names, max_iter=max_iter,
                          gap_tol=gap_tol, time_limit=time_limit, exact_time_limit=time_limit,
                          progress=sys.stderr.isatty())
    if plot is not None and runs:
        plot_convergence(runs, table, plot, title=inst.name)
        log.info(f"wrote {plot}")
    elif plot is not None:
        log.info(f"no plot written to {plot}: no decomposition run finished")
    if out is not None:
        tables = {"compare": table}
        for (variant, method), res in runs.items():
            tables[f"history_{variant}_{method}"] = res.history
            tables[f"multipliers_{variant}_{method}"] = res.multipliers.drop(columns=["key"])
        write_tables(out, tables, force=force)
        log.info(f"wrote {out}")
    click.echo(tidy(table))
    if (table["status"] == "interrupted").any() or (table["exact_status"]
                                                    == "interrupted").any():
        raise Exit(INTERRUPTED, "interrupted: the rows finished so far are shown"
                   + (" and written" if out is not None else ""))
    if table["exact_status"].isin(["infeasible", "infeasible_or_unbounded"]).any():
        raise Exit(INFEASIBLE, "the exact solve proves the instance infeasible: no plan meets "
                   "every constraint")


@main.command("decompose")
@click.argument("instance")
@click.option("--variant", type=click.Choice(["continuous", "integer"]), default="continuous",
              show_default=True, help="LP, or integer units with stock-or-not fixed costs.")
@click.option("--method", default="bundle", show_default=True,
              help="Dual method: bundle, volume, subgradient or subgradient-diminishing.")
@click.option("--max-iter", type=click.IntRange(min=1), default=200, show_default=True,
              help="Iterations in all (a resumed run counts the earlier ones).")
@click.option("--gap", "gap_tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Stop at this certified relative gap.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Seconds for this call.")
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Write the run's state to this file every --checkpoint-every iterations.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Iterations between two checkpoints (and one at the end).")
@click.option("--resume", is_flag=True,
              help="Continue from --checkpoint if it exists (same instance, variant, method).")
@click.option("--backend", type=click.Choice(["local", "process", "dask"]), default="local",
              show_default=True, help="Where the SKU subproblems run.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (process and dask back-ends); SKUs are split in shards.")
@click.option("--address", help="Dask scheduler address (default: a LocalCluster on 127.0.0.1).")
@click.option("--lean", is_flag=True,
              help="Hold only each SKU's last basis, not its HiGHS model or arrays (kilobytes "
                   "instead of megabytes per SKU; each solve compiles and rebuilds the "
                   "model): for many SKUs.")
@click.option("--recover-every", type=click.IntRange(min=0), default=5, show_default=True,
              help="Recover a feasible plan every N iterations; 0: bounds and prices only.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write summary, history, multipliers and the recovered plan here.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="Format of the written tables.")
@click.option("--force", is_flag=True, help=FORCE_HELP + " With --checkpoint: start over and "
              "replace an existing checkpoint.")
@_user_errors
@click.pass_context
def decompose(ctx, instance, variant, method, max_iter, gap_tol, time_limit, checkpoint,
              checkpoint_every, resume, backend, workers, address, lean, recover_every,
              out, fmt, force) -> None:
    """Solve INSTANCE by Lagrangian decomposition: certified bounds, prices, a feasible plan.

    Prints the bound, the best feasible value and the certified gap (UB - LB)/|UB|, and the
    priced linking rows. With --checkpoint a long run can be stopped (Ctrl-C, or killed) and
    continued with --resume; the checkpoint file is replaced atomically, never left
    half-written, and belongs to one problem: a checkpoint of other data is refused. Exit code
    3 when the instance is proven infeasible, 4 when the run stopped without a feasible plan
    (not with --recover-every 0, which asks for bounds and prices only), 130 after Ctrl-C (what
    was found is printed and written).
    """
    from meio.decomposition import METHODS, lagrangian_decomposition
    from meio.models import InventoryModel

    if method not in METHODS:
        raise click.BadParameter(f"choose from {', '.join(METHODS)}", param_hint="--method")
    if resume and checkpoint is None:
        raise click.UsageError("--resume needs --checkpoint")
    own = (checkpoint,) if checkpoint is not None else ()
    _check_out(out, force, instance, own)
    _check_checkpoint(checkpoint, resume, force)
    ctx.meta["meio.resume_hint"] = (
        f"; continue from the last checkpoint with the same command and --resume "
        f"(--checkpoint {checkpoint})" if checkpoint is not None else
        "; with --checkpoint FILE a run can be continued after such a failure")
    inst = _load(instance, variant)
    res = lagrangian_decomposition(
        InventoryModel(inst, variant), method=method, max_iter=max_iter, gap_tol=gap_tol,
        time_limit=time_limit, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        resume=resume, progress=sys.stderr.isatty(), backend=backend, workers=workers,
        address=address, lean=lean, recover_every=recover_every)
    summary = res.summary().set_index("item").loc[
        ["status", "method", "lower bound", "upper bound", "certified gap", "iterations",
         "seconds"]].reset_index()
    if out is not None:
        res.write(out, fmt, force=force, own=own)
        log.info(f"wrote {out}")
    click.echo(tidy(summary))
    priced = res.multipliers[res.multipliers["multiplier"].abs() > 1e-9].drop(columns=["key"])
    labels = [c for c in priced.columns if priced[c].notna().any()]
    click.echo(f"\npriced linking rows: {len(priced)} of {len(res.multipliers)}")
    click.echo(tidy(priced[labels], digits=6))
    if res.status == "infeasible":
        raise Exit(INFEASIBLE, f"infeasible: {res.infeasibility}")
    if res.status == "interrupted":
        where = f"; continue with --resume --checkpoint {checkpoint}" if checkpoint else ""
        raise Exit(INTERRUPTED, f"interrupted after {res.iterations} iterations: the best "
                   f"bound and plan so far are shown{' and written' if out else ''}{where}")
    if res.primal is None and recover_every:
        raise Exit(LIMIT, f"no feasible plan found ({res.status.replace('_', ' ')}): raise "
                   "--max-iter or --time-limit, or check the instance with `meio solve`")


@main.command("validate")
@click.argument("formulation")
@click.option("--n", "count", type=click.IntRange(min=1), default=5, show_default=True,
              help="Number of random instances (seeds SEED .. SEED+N-1).")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option("--method", default="bundle", show_default=True,
              help="Dual method: bundle, volume, subgradient or subgradient-diminishing.")
@click.option("--max-iter", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--gap", "gap_tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Relative gap an LP's bound must close to.")
@click.option("--tol", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Tolerance of the bound comparisons and of the primal checks.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per exact solve and per decomposition run.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the full report to this .csv file.")
@_user_errors
def validate_cmd(formulation, count, seed, method, max_iter, gap_tol, tol, time_limit,
                 out) -> None:
    """Check FORMULATION's bounds on N random instances; exit code 5 on any violation.

    FORMULATION is a built-in one (inventory, inventory-integer, lot-sizing,
    lot-sizing-aggregate) or a callable that takes a seed and returns a block family, given as
    `package.module:callable` or `path/to/file.py:callable`. Each instance is solved exactly and
    by the decomposition; reported are bound violations (bound beyond the exact optimum, exact
    beyond the feasible value), gaps not closed (an LP's bound short of its optimum, a MIP's
    Lagrangian bound weaker than its LP relaxation), recovered solutions that break a block
    constraint or linking row or cost other than reported -- each with the seed that reproduces
    it. Exit code 0: all passed; 5: a violation; 2: a usage error.
    """
    from meio.decomposition import METHODS
    from meio.testing import resolve_formulation, validate_formulation

    if method not in METHODS:
        raise click.BadParameter(f"choose from {', '.join(METHODS)}", param_hint="--method")
    if out is not None:
        check_output_file(out, (".csv",), "--out")
    try:
        make = resolve_formulation(formulation)
    except ImportError as exc:
        raise click.UsageError(f"cannot import {formulation!r}: {exc}") from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    report = validate_formulation(make, n=count, seed=seed, method=method, max_iter=max_iter,
                                  gap_tol=gap_tol, tol=tol, time_limit=time_limit,
                                  progress=sys.stderr.isatty())
    if out is not None:
        with atomic_file(out) as tmp:
            report.to_csv(tmp, index=False)
    failed = report[report["status"] == "fail"]
    for row in report[report["status"] != "ok"].itertuples(index=False):
        click.echo(f"{row.status.upper()} seed={row.seed} {row.check}: {row.detail}")
    seeds = sorted(set(failed["seed"]))
    done = report["seed"].nunique() if len(report) else 0
    click.echo(f"{formulation}: {done} of {count} instance(s), {len(report)} checks, {len(failed)} "
               f"failed" + (f" (seeds {', '.join(map(str, seeds))}; reproduce one with "
                            f"`meio validate {formulation} --n 1 --seed {seeds[0]}`)"
                            if seeds else ""))
    if (report["status"] == "interrupted").any():
        raise Exit(INTERRUPTED, "interrupted: the checks finished so far are shown"
                   + (" and written" if out is not None else ""))
    if len(failed):
        raise Exit(CHECK_FAILED)

def _read_sample_tables(path: Path) -> dict:
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a directory of sample tables")
    tables = {}
    for name in ("scenarios", "demand", "vendor_lead_times", "transfer_lead_times"):
        f = path / f"{name}.csv"
        if f.exists():
            tables[name] = pd.read_csv(f)
    return tables


@main.command("evaluate")
@click.argument("instance")
@click.option("--methods", default="single_echelon,no_network,exact,decomposition,no_targets",
              show_default=True,
              help="Comma-separated plans to compare: single_echelon (per-FC newsvendors), "
                   "no_network (no network targets, no transfers), exact (monolithic "
                   "optimum), decomposition (Lagrangian), no_targets (optimum with penalties "
                   "only).")
@click.option("--plan", "plan_dirs", multiple=True, metavar="NAME=DIR",
              help="Also evaluate a plan read from DIR (buys.csv, optional deploy.csv); "
                   "repeatable.")
@click.option("--policies", default="cheapest,lookahead,bid_price,clairvoyant",
              show_default=True,
              help="Comma-separated fulfillment policies: cheapest, lookahead, bid_price "
                   "(shipping cost plus the unit's opportunity cost from the instance's LP "
                   "prices, within the look-ahead protection levels), clairvoyant (the optimal "
                   "routing of known samples: a lower bound; LPs over chunks of samples). "
                   "Policies are compared sample by sample against lookahead.")
@click.option("--samples", "n_samples", type=click.IntRange(min=2), default=100,
              show_default=True, help="Number of fresh samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the samples.")
@click.option("--sample-tables", type=click.Path(path_type=Path),
              help="Directory of sample tables in the instance schema (scenarios.csv, "
                   "demand.csv, vendor_lead_times.csv, transfer_lead_times.csv) to use "
                   "instead of fresh samples.")
@click.option("--variant", type=click.Choice(["continuous", "integer"]), default="continuous",
              show_default=True, help="Variant the optimizer plans with.")
@click.option("--steps", type=click.IntRange(min=1), default=8, show_default=True,
              help="Ticks of the cycle clock (besides every cut-off).")
@click.option("--protect", type=click.FloatRange(0.5, 1.0, max_open=True), default=0.99,
              show_default=True, help="Look-ahead and bid-price policies: quantile of the "
                                      "remaining faster demand a node protects from slower "
                                      "orders first.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Time limit per planning solve, seconds.")
@click.option("--max-iter", type=click.IntRange(min=1), default=200, show_default=True,
              help="Iteration limit of the decomposition.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Report directory (default: evaluation_<instance>).")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@_user_errors
def evaluate_cmd(instance, methods, plan_dirs, policies, n_samples, seed, sample_tables,
                 variant, steps, protect, time_limit, max_iter, out, force) -> None:
    """Evaluate plans for INSTANCE out of sample: every plan meets the same fresh demand and
    lead-time samples in a simulation of orders through the cycle, under each fulfillment
    policy; writes tables (CSV), plots (PNG) and report.md / report.html into --out.

    \b
    Example:
      meio evaluate small --samples 200 --out eval_small && open eval_small/report.html
    """
    from meio.models import interrupt
    from meio.simulation import network_arrays, read_plan, samples_from_tables
    from meio.simulation.baselines import METHODS, PlannedBy
    from meio.simulation.engine import POLICIES
    from meio.simulation.report import evaluate, write_report

    require("matplotlib", "the evaluation report")  # before any work: the report draws figures
    names = [m.strip() for m in methods.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise click.BadParameter(f"unknown method(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(METHODS)}", param_hint="--methods")
    pols = [p.strip() for p in policies.split(",") if p.strip()]
    bad = [p for p in pols if p not in POLICIES]
    if bad or not pols:
        raise click.BadParameter(f"unknown policy {', '.join(bad)}; choose from "
                                 f"{', '.join(POLICIES)}", param_hint="--policies")
    _check_out(out, force, instance)
    inst = _load(instance, variant if variant == "integer" else None)
    out = _check_out(out or Path(f"evaluation_{inst.name}"), force, instance)
    given = {}
    for spec in plan_dirs:
        name, sep, where = spec.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{spec!r}: expected NAME=DIR", param_hint="--plan")
        plan = read_plan(where)
        plan.name = name
        given[name] = PlannedBy(plan, "given", None, 0.0)
    net = network_arrays(inst)
    for pb in given.values():
        pb.plan.arrays(net)  # a bad plan table is reported before any model is built
    smp = (samples_from_tables(net, _read_sample_tables(sample_tables))
           if sample_tables is not None else None)
    log.info(f"evaluating on {inst.name}: plans {', '.join(names + list(given))}; "
             f"policies {', '.join(pols)} ...")
    try:
        ev = evaluate(inst, names, pols, n_samples, seed, smp, given, variant, steps,
                      time_limit, max_iter, progress=sys.stderr.isatty(), protect=protect)
    except RuntimeError as exc:
        if interrupt.requested():
            raise Exit(INTERRUPTED, "interrupted: no report written (a previous report in "
                       f"{out} is as it was)") from None
        raise UserError(str(exc)) from None
    if interrupt.requested():
        raise Exit(INTERRUPTED, f"interrupted: no report written (a previous report in {out} "
                   "is as it was)")
    cols = ["method", "policy", "total", "total_ci95", "met_within_promise", "km_per_unit"]
    click.echo(ev.tables["summary"][cols].to_string(index=False,
                                                    float_format=lambda x: f"{x:,.6g}"))
    write_report(ev, out, force=force)
    log.info(f"wrote {out}/report.html (and report.md, CSV tables, PNG plots)")


if __name__ == "__main__":  # pragma: no cover
    main()
