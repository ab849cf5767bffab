"""The Qt side of ``plantds gui``: one panel per device, in tabs (imports Taurus and PyQt5)."""

from __future__ import annotations

from taurus.external.qt import Qt
from taurus.qt.qtgui.button import TaurusCommandButton
from taurus.qt.qtgui.display import TaurusLabel, TaurusLed
from taurus.qt.qtgui.panel import TaurusForm
from taurus_pyqtgraph import TaurusTrend

from . import PANELS, shown_attributes


class DevicePanel(Qt.QWidget):
    """State LED, Status, commands, the values form and the trends of one device."""

    def __init__(self, device: str, tango_class: str, parent=None):
        super().__init__(parent)
        spec = PANELS[tango_class]
        self.device = device
        self.title = f"{spec.title} {device}"

        header = Qt.QHBoxLayout()
        self.led = TaurusLed()
        self.led.setModel(f"{device}/State")
        self.led.setFixedSize(28, 28)
        name = Qt.QLabel(f"<b>{self.title}</b>")
        self.status = TaurusLabel()
        self.status.setModel(f"{device}/Status")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.Qt.AlignLeft | Qt.Qt.AlignVCenter)
        header.addWidget(self.led)
        header.addWidget(name)
        header.addWidget(self.status, 1)
        self.buttons = []
        for command in spec.commands:
            button = TaurusCommandButton(command=command, text=command)
            button.setModel(device)
            button.setTimeout(20)  # a chiller On/Off with resends takes up to ~9 s
            header.addWidget(button)
            self.buttons.append(button)

        self.form = TaurusForm()
        self.form.setWithButtons(False)  # writes apply on Enter, as operators expect
        self.form.setModel([f"{device}/{a}" for a in shown_attributes(device, spec.values)])

        trends = Qt.QVBoxLayout()
        self.trends = []
        for names in spec.trends:
            shown = shown_attributes(device, names)
            if shown:
                trend = TaurusTrend()
                trend.setModel([f"{device}/{a}" for a in shown])
                trend.setMinimumHeight(220)
                trends.addWidget(trend)
                self.trends.append(trend)

        body = Qt.QHBoxLayout()
        body.addWidget(self.form, 3)
        body.addLayout(trends, 4)
        layout = Qt.QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(body, 1)

    def value_texts(self) -> dict[str, tuple[str, str, str]]:
        """attribute → (label, value, units) as the form shows them."""
        texts = {}
        for item in self.form.getItems():
            attribute = item.getModel().rsplit("/", 1)[-1]
            units = item.unitsWidget()
            texts[attribute] = (item.labelWidget().text(), _shown(item.readWidget()), units.text() if units else "")
        return texts

    def filled(self) -> bool:
        """Every value, the State and the Status have been read at least once."""
        widgets = [item.readWidget() for item in self.form.getItems()] + [self.led, self.status]
        return len(widgets) > 2 and all(w.getModelValueObj() is not None for w in widgets)


def _shown(widget) -> str:
    """What a read widget shows: a label's text; a boolean LED's value as on/off."""
    if hasattr(widget, "text"):
        return widget.text()
    value = widget.getModelValueObj()
    return "" if value is None else ("on" if value.rvalue else "off")


class PlantWindow(Qt.QMainWindow):
    def __init__(self, devices: list[tuple[str, str]]):
        super().__init__()
        self.setWindowTitle("plantds — plant")
        self.tabs = Qt.QTabWidget()
        self.panels = [DevicePanel(device, cls) for device, cls in devices]
        for panel in self.panels:
            self.tabs.addTab(panel, panel.title)
        self.setCentralWidget(self.tabs)
        self.resize(1200, 720)
