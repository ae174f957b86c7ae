"""The coalition workbook's Breakage sheet: the cohorts of issue months that the coalition
statement signs, their shares, and their redemption curves by age (the data of a breakage
estimate, IFRS 15 B44-B47)."""

from __future__ import annotations

from typing import Any, Final

from clearhouse.statements.columns import COHORT_COLUMNS, CohortRow, CurveRow, curve_columns
from clearhouse.statements.model import CoalitionStatement
from clearhouse.statements.sheets import PrintedPages, Sheet

BREAKAGE_SHEET: Final = "Breakage"
CURVE_HEADING: Final = "Redemption curve by age (cumulative share of points redeemed)"
BREAKAGE_NOTE: Final = (
    "Data for a breakage estimate (IFRS 15 B44-B47). A cohort is the points first issued in a "
    "month (the coalition's time zone), read from the lots as of the cut-off, each figure net "
    "of its reversals; outstanding = issued + adjusted - redeemed - expired. Shares are of "
    "issued + adjusted, so a cohort's redeemed, expired and outstanding shares add up to 100%. "
    "Outstanding points are what a breakage estimate applies to; together they are the "
    "members' balances at the cut-off. Age 0 is the month of issue, age 1 the month after."
)
NO_COHORTS: Final = (
    "This statement carries no cohort data (it has no lots as of its cut-off, or was signed "
    "before points expired by lots)."
)


def breakage_sheet(workbook: Any, body: CoalitionStatement, pages: PrintedPages) -> None:
    """The cohorts by month of issue, their shares, and their redemption curves by age."""
    cohorts = [CohortRow.of(cohort) for cohort in body.breakage_cohorts]
    curves = [CurveRow.of(cohort) for cohort in body.breakage_cohorts]
    ages = curve_columns(max((len(curve.shares) for curve in curves), default=0))
    sheet = Sheet.of_tables(
        workbook, BREAKAGE_SHEET, COHORT_COLUMNS, ages, pages=pages, orientation="landscape"
    )
    sheet.heading("Breakage cohorts by month of issue", "Points")
    if not cohorts:
        sheet.append(sheet.text(NO_COHORTS))
        sheet.close()
        return
    sheet.blank()
    sheet.table_heading(COHORT_COLUMNS)
    sheet.rows_of(COHORT_COLUMNS, cohorts)
    sheet.total_row(COHORT_COLUMNS, CohortRow.total(cohorts))
    sheet.blank()
    balances = body.points_roll_forward.member_balances_at_cut_off
    sheet.field("Member balances at the cut-off", sheet.points(balances))
    agree = sum(cohort.outstanding for cohort in cohorts) == balances
    sheet.field("Outstanding agrees with member balances", "yes" if agree else "NO")
    sheet.blank()
    sheet.heading(CURVE_HEADING)
    sheet.table_heading(ages)
    sheet.rows_of(ages, curves)
    sheet.blank()
    sheet.field("Note", BREAKAGE_NOTE)
    sheet.close()
