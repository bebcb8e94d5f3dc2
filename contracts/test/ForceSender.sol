// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

/// @title ForceSender
/// @notice Test-only: pushes ether into a contract that refuses it (no `receive`, no
///         payable fallback) by self-destructing in its constructor, which EIP-6780 still
///         allows. A campaign must keep exact books whatever its balance says.
contract ForceSender {
    /// @notice Sends all the value given to `target`, without calling it.
    constructor(address payable target) payable {
        // slither-disable-next-line suicidal
        selfdestruct(target);
    }
}
