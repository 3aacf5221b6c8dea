"""Every emonPi firmware's line format, recognised line by line."""

from irene_meter_emonpi.formats import Reading, parse_line


def test_classic_packet_from_the_firmware_docs():
    line = "OK 5 4 0 146 4 150 4 226 93 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 (-0)"
    assert parse_line(line) == Reading("classic", {1: 4.0, 2: 1170.0}, 240.34)


def test_paper_firmware_line_is_watts_times_100():
    assert parse_line("power1,12345\r") == Reading("170ms", {1: 123.45})
    assert parse_line("power1,-250") == Reading("170ms", {1: -2.5})


def test_continuous_monitoring_packet_of_40_bytes():
    # msg 1000, power1 300 W, power2 -20 W, sum 280, 230.00 V, six temps, pulses, E1 = 5 Wh, E2 = 0
    payload = [232, 3, 0, 0, 44, 1, 236, 255, 24, 1, 216, 89] + [0] * 12 + [0] * 8 + [5, 0, 0, 0] + [0] * 4
    reading = parse_line("OK 5 " + " ".join(map(str, payload)) + " (-61)")
    assert reading == Reading("continuous", {1: 300.0, 2: -20.0}, 230.0)


def test_emonpi2_key_value_lines():
    line = "MSG:1521,Vrms:239.87,P1:212,P2:0,P3:17,E1:10432,E2:0,pulse:0"
    assert parse_line(line) == Reading("keyvalue", {1: 212.0, 2: 0.0, 3: 17.0}, 239.87)
    assert parse_line("MSG:7,V1:241.5,P1:99,I1:0.45,pf1:0.91") == Reading("keyvalue", {1: 99.0}, 241.5)


def test_non_readings_are_ignored():
    classic = "OK 5 4 0 146 4 150 4 226 93 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 (-0)"
    for line in ("", "emonPi V2.9.4", "> 5i", "OK 5 1 2 3 (-40)", "Vrms:239,P1:x", "MSG:3,T1:21.5,pulse:0"):
        assert parse_line(line) is None, line
    assert parse_line(classic, node=10) is None  # another node's packet
    assert parse_line(classic.replace(" 93 ", " 393 ")) is None  # not bytes
