"""`edgezoo demo ...`: interactive local demos (Gradio). Gradio is imported only when a demo starts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail
from models.errors import EdgeZooError

app = typer.Typer(help="Interactive local demos (Gradio, served on 127.0.0.1).", no_args_is_help=True)


@app.command("specdec")
def specdec(host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback unless you mean otherwise)"),
            port: int = typer.Option(7860, "--port", help="port to serve on", min=1, max=65535),
            workspace: Optional[Path] = WorkspaceOpt) -> None:
    """QuantSpec self-speculative decoding of a zoo LM, streamed beside plain decoding (Ctrl-C stops it)."""
    from app.demo_specdec import launch
    from app.workspace import Workspace

    try:
        ws = Workspace.resolve(workspace)
        typer.echo(f"EdgeZoo speculative-decoding demo for {ws.root} at http://{host}:{port}", err=True)
        launch(ws, host=host, port=port)
    except EdgeZooError as e:
        _fail(e)
