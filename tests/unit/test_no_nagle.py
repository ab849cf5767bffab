"""Every TCP request/response link runs with TCP_NODELAY (no Nagle + delayed-ACK stall)."""

from __future__ import annotations

import socket

from plantds.devices.coleparmer.driver import NcDriver
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.driver import CpaDriver
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.simulator import HpsuSimulator


def nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_modbus_tcp_and_nc_over_a_terminal_server():
    with CpaSimulator() as sim:
        drv = CpaDriver(sim.url)
        drv.connect()
        try:
            assert nodelay(drv._link.transport().socket)
        finally:
            drv.close()
    chiller = ChillerSimulator("Polystat")
    chiller.start()
    try:
        drv = NcDriver(chiller.url)
        drv.connect()
        try:
            assert nodelay(drv._link.transport()._socket)
        finally:
            drv.close()
    finally:
        chiller.stop()


def test_socketcand_and_elm327_over_tcp():
    sim = HpsuSimulator(socketcand_port=0, elm_port=0, drift=False).start()
    try:
        for url in sim.urls:
            drv = HpsuDriver(url, commands=["mode_01"])
            drv.connect()
            try:
                port = drv._link.transport()
                if url.startswith("socketcand://"):  # our socketcand client's socket
                    sock = port._bus._socket
                else:  # pyserial's socket:// to the ELM327 bridge
                    sock = port._elm._serial._socket
                assert nodelay(sock), url
            finally:
                drv.close()
    finally:
        sim.stop()
