// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ERC2771Forwarder} from "@openzeppelin/contracts/metatx/ERC2771Forwarder.sol";

/// @title Forwarder
/// @notice The one trusted ERC-2771 forwarder of a Spartacus deployment: OpenZeppelin's audited
///         `ERC2771Forwarder`, unchanged, under the EIP-712 domain name "Spartacus" (version "1").
/// @dev A relayer submits a request signed by a key that need hold no ether (a pledger's member
///      key); the factory and its campaigns then see that key's address as the caller.
contract Forwarder is ERC2771Forwarder {
    /// @notice Deploys the forwarder; its EIP-712 domain is ("Spartacus", "1", chainid, address).
    constructor() ERC2771Forwarder("Spartacus") {}
}
