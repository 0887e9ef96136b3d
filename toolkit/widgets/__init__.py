"""ipywidgets panels for browsing a pipeline site in JupyterLab.

``Browser(client)`` (tabs of paged tables and a detail panel), ``NightPanel(client)`` (the last night, live), ``EtaVPanel(client)`` (the η–V plane, linked to light curves), ``SkyPanel(client)`` (sources and image centres),
``Dashboard(client)``, and the panels on their
own: ``ImagePanel(client, image_id)``, ``MSPanel``, ``SourcePanel``, ``JobPanel`` (with a live log follow),
``CalTablePanel``. ``client`` is a ``Client`` or an ``AsyncClient``; callbacks never block the kernel.
"""

from __future__ import annotations

from .browser import Browser
from .dashboard import Dashboard
from .etav import EtaVPanel
from .night import NightPanel
from .panels import CalTablePanel, ImagePanel, JobPanel, MSPanel, Panel, SourcePanel
from .sky import SkyPanel

__all__ = [
    "Browser",
    "CalTablePanel",
    "Dashboard",
    "EtaVPanel",
    "ImagePanel",
    "JobPanel",
    "MSPanel",
    "NightPanel",
    "Panel",
    "SkyPanel",
    "SourcePanel",
]
