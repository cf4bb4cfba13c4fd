"""Exports of a recorded session (CSV now; PDF, HL7 v2 and FHIR later). Never imports Qt."""
